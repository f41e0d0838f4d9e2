"""star-slr's caption path side by side with the serving frameworks a user would otherwise pick (benchmark only).

`python -m bench.peers --artifacts models/default` (see __main__.py) serves the same work (this project's decode
function and ONNX graphs) with BentoML (bentoml_service.py) and LitServe (litserve_server.py), starts star-slr as
bench/load.py does, and drives all three with the same wrk load. The peers are an optional extra
(`pip install -e '.[peers]'`), never in the serving image.
"""
