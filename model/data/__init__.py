"""The data room: synthetic clips and the MSVD / MSR-VTT loaders, all behind one corpus contract.

Torch-free (numpy, pillow) except `dataset.py`. This __init__ imports nothing so that importing
`model.data.attributes` (e.g. for `parse_attributes` at evaluation time) stays cheap.
"""
