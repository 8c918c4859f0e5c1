"""The injection corpus: the project's own labelled text, and its splits.

`corpus/injection/` holds JSON lines, one item each: `{"id", "text", "label":
"injection" | "benign", "technique", "language", "carrier", "group"}`.

- `attacks.jsonl`, `benign.jsonl`: the first, hand-written corpus the rules were tuned on;
- `sets/*.jsonl`: the sets written for the learned layer, by hand and by the
  generators in `generators/` (each fixed-seed);
- `fresh/*.jsonl`: written only after the model and its threshold were frozen, and
  measured once; never trained or tuned on (a fresh split that has been measured
  moves to `sets/` as training data, and the next one is written after the next
  freeze: `sets/fresh1_*` was the first, `sets/fresh2_*` the second).

Train and dev are split by *group* (a set's sub-collection, every variant of one
base text, every translation of one scenario, every use of one injected
instruction), never by item: a dev injection never shares its instruction, template
or base sentence with a training one, so dev measures phrasings the model has not
seen (carrier text around an injection may recur: it is what the desk reads daily).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CORPUS_DIR = Path(__file__).resolve().parents[3] / "corpus" / "injection"
DEV_SHARE = 5  # one group in five goes to dev


class CorpusItem(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1)
    text: str
    label: Literal["injection", "benign"]
    technique: str = "unspecified"
    language: str = "en"
    carrier: str = "headline"
    group: str = ""
    split: Literal["train", "dev", "fresh"] = "train"


class CorpusError(ValueError):
    pass


def split_key(group: str) -> str:
    """What decides an item's split: its group, except in the carriers set, where the
    injected instruction's bucket does (`carriers/k<carrier>-i<instruction>`), so no
    instruction in dev is ever seen in training, whatever carrier it came in."""
    m = re.fullmatch(r"carriers/k\d+-(i\d+)", group)
    return f"carriers/{m.group(1)}" if m else group


def fold_of(group: str) -> int:
    """The group's cross-validation fold (of DEV_SHARE), by its split key: fold 0 is dev."""
    return int(hashlib.sha256(split_key(group).encode()).hexdigest()[:8], 16) % DEV_SHARE


def split_of(group: str) -> Literal["train", "dev"]:
    return "dev" if fold_of(group) == 0 else "train"


def read_jsonl(path: Path, *, fresh: bool = False, legacy: bool = False) -> list[CorpusItem]:
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if legacy:  # the first corpus: split by technique (attacks) or by tenth (benign)
                raw["technique"] = raw.get("technique", "benign").replace(" ", "-")
                raw["group"] = f"legacy/{raw['technique']}" if raw["label"] == "injection" else f"legacy/benign-{int(hashlib.sha256(raw['id'].encode()).hexdigest()[:4], 16) % 10}"
                raw.pop("split", None)
            raw.setdefault("group", f"{path.stem}/{raw.get('technique', 'unspecified')}")
            raw["split"] = "fresh" if fresh else split_of(raw["group"])
            items.append(CorpusItem.model_validate(raw))
        except (ValueError, ValidationError) as exc:
            raise CorpusError(f"{path}:{n}: {str(exc).splitlines()[0]}") from exc
    return items


def load(corpus: Path = CORPUS_DIR, *, fresh: bool = True, extra: Iterable[Path] = ()) -> list[CorpusItem]:
    """Every item, with its split; `fresh=False` leaves the fresh split unread (training)."""
    if not corpus.is_dir():
        raise CorpusError(f"no corpus at {corpus}: the training script and the benchmark run from a clone of the repository")
    items = []
    for name in ("attacks.jsonl", "benign.jsonl"):
        if (corpus / name).is_file():
            items += read_jsonl(corpus / name, legacy=True)
    for path in sorted((corpus / "sets").glob("*.jsonl")):
        items += read_jsonl(path)
    for path in extra:
        items += read_jsonl(Path(path))
    if fresh:
        for path in sorted((corpus / "fresh").glob("*.jsonl")):
            items += read_jsonl(path, fresh=True)
    counts = Counter(i.id for i in items)
    if len(counts) != len(items):
        dup = sorted(i for i, n in counts.items() if n > 1)[:5]
        raise CorpusError(f"corpus ids must be unique; repeated: {dup}")
    return items
