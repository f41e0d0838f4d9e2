"""The star-slr HTTP service. Importing this package loads nothing heavy: the app lives in `service.app`."""
