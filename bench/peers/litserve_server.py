"""star-slr's caption path served by LitServe 0.2, written the way LitServe's documentation shows it (benchmark only).

    SLR_ARTIFACTS=models/default python -m bench.peers.litserve_server --port 8000

The same work as star-slr's POST /caption: the upload is decoded by `core.media.prepare_upload`, the video encoder
and greedy sentence decoding run on the same ONNX graphs (`service.engine.Engine`).

The shape follows LitServe's "Batching" docs: a `LitAPI` with `setup`, `decode_request`, `batch`, `predict`,
`unbatch` and `encode_response`, `max_batch_size` and `batch_timeout` given to the LitAPI (where 0.2 moved them),
one worker (`workers_per_device=1`, CPU), one API server process. `decode_request` gets the multipart form (its
`request` is left unannotated, so LitServe parses the form); the upload's sha256 looks up an in-process dict
sha256 -> mu (star-slr keeps that cache in Redis or an LRU), and a miss is decoded there. `predict` runs the video
encoder on the misses of the batch (stacked) and greedy decoding on every row; `encode_response` answers
{"caption": ...}.
"""
import argparse
import hashlib
import os
from pathlib import Path

import litserve as ls
import numpy as np

ROOT = Path(__file__).resolve().parents[2]

ARTIFACTS = os.environ.get("SLR_ARTIFACTS", str(ROOT / "models" / "default"))
# onnxruntime threads per graph call: star-slr's setting and default (SLR_INTRA_OP_THREADS, 1), so the engine is the
# same and only the serving differs; 0 is onnxruntime's own default (a thread per core).
INTRA_OP_THREADS = int(os.environ.get("SLR_INTRA_OP_THREADS", "1"))


class CaptionAPI(ls.LitAPI):
    def setup(self, device):
        from core.media import MediaLimits
        from service.engine import Engine

        self.engine = Engine.load(ARTIFACTS, intra_op_threads=INTRA_OP_THREADS)
        self.engine.warmup()
        self.limits = MediaLimits()
        self.cache = {}  # sha256(upload) -> mu

    def decode_request(self, request):
        data = request["video"].file.read()
        key = hashlib.sha256(data).hexdigest()
        hit = self.cache.get(key)
        return (key, hit, None) if hit is not None else (key, None, self.prepare(data))

    def prepare(self, data):
        """The upload as the model's input: its frames."""
        return self.prepared(data).array

    def prepared(self, data):
        """The upload decoded as the service does: a PreparedVideo (its frames, and where its picture lies)."""
        from core.media import prepare_upload

        return prepare_upload(data, self.engine.config, self.limits)

    def batch(self, inputs):
        return inputs  # (key, mu or None, clip or None) per request: predict stacks what the graphs need

    def predict(self, x):
        misses = [i for i, (_, mu, _) in enumerate(x) if mu is None]
        mus = [mu for _, mu, _ in x]
        if misses:
            encoded, _ = self.engine.encode(np.stack([x[i][2] for i in misses]), None)
            for i, mu in zip(misses, encoded):
                self.cache[x[i][0]] = mus[i] = mu
        ids = self.engine.decode_sentence(np.stack(mus))
        return [self.engine.vocab.decode(row) for row in ids]

    def unbatch(self, output):
        return list(output)

    def encode_response(self, output):
        return {"caption": output}


class ScoredCaptionAPI(CaptionAPI):
    """`--score`: star-slr's whole cache miss in LitServe's shape, the familiarity signals included (the rebuild and
    the calibration's measures, as service/predictor.py `_run_score`), each worker doing all of it for its batch:
    what star-slr would gain by running its model where it decodes the upload (docs/performance.md)."""

    def setup(self, device):
        super().setup(device)
        calibration = self.engine.manifest.familiarity
        if calibration is None:
            raise SystemExit("--score needs a model with a familiarity calibration")
        self.calibration = calibration

    def prepare(self, data):
        return self.prepared(data)  # the score also needs where the picture lies

    def predict(self, x):
        misses = [i for i, (_, hit, _) in enumerate(x) if hit is None]
        found = [hit for _, hit, _ in x]
        if misses:
            video = np.stack([x[i][2].array for i in misses])
            mu, _ = self.engine.encode(video, None)
            rebuilt = self.engine.rebuild_video(mu, video[:, 0])
            signals = self.calibration.measure(video, rebuilt, [x[i][2].box for i in misses])
            for j, i in enumerate(misses):
                self.cache[x[i][0]] = found[i] = (mu[j], [float(v) for v in signals[j]])
        ids = self.engine.decode_sentence(np.stack([mu for mu, _ in found]))
        return [(self.engine.vocab.decode(row), sig) for row, (_, sig) in zip(ids, found)]

    def encode_response(self, output):
        return {"caption": output[0], "signals": output[1]}


def build_server(max_batch_size: int = 32, batch_timeout: float = 0.01, workers: int = 1,
                 score: bool = False) -> ls.LitServer:
    api = (ScoredCaptionAPI if score else CaptionAPI)(max_batch_size=max_batch_size, batch_timeout=batch_timeout,
                                                      api_path="/caption")
    return ls.LitServer(api, accelerator="cpu", workers_per_device=workers, timeout=60)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="inference worker processes (workers_per_device)")
    p.add_argument("--score", action="store_true", help="also the familiarity signals of every miss, as star-slr")
    p.add_argument("--max-batch-size", type=int, default=int(os.environ.get("SLR_PEER_MAX_BATCH", "32")))
    p.add_argument("--batch-timeout", type=float, default=float(os.environ.get("SLR_PEER_BATCH_TIMEOUT", "0.01")),
                   help="seconds LitServe waits to fill a batch")
    args = p.parse_args(argv)
    server = build_server(args.max_batch_size, args.batch_timeout, args.workers, args.score)
    server.run(host="127.0.0.1", port=args.port, num_api_servers=1, generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()
