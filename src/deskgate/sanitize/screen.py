"""The screen for instruction-like content in untrusted text.

Deterministic rules, each with a weight and a name that becomes the reason. A
news item is meant to *report*; the screen looks for text that instead *talks
to the model* (addresses an AI, assistant or automated reader, claims authority
over it, sets up a role play), *tries to replace its instructions* (ignore
previous instructions, a new system prompt, chat-template tokens, in a few
languages), *orders trades* in the imperative (sell everything now, liquidate
your positions), dictates the output, asks for secrecy or secrets, and for the
tricks that carry such text (hidden characters and hidden markup, spaced-out or
leetspeak letters, base64, structured directives in prose). Headlines that merely
use the words ("investors ignore Fed", "court overrides ruling", "strategist says
sell everything") score low because the rules key on who is addressed and on
imperative form, not on the words alone.

The rules run on the cleaned text, on the text before markup was stripped (so an
HTML comment cannot hide anything), and on a de-obfuscated copy. The score
combines the matched weights as independent evidence, 1 − Π(1 − w); an item is
flagged at `THRESHOLD` or above.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from collections import Counter
from dataclasses import dataclass

THRESHOLD = 0.6  # two independent signals, or one strong one (weight 0.6 and up)

_MODEL = (
    r"(?:(?:ai|a\.i\.|llm|trading|desk|automated|autonomous|machine|language)\s+)?"
    r"(?:assistants?|agents?|bots?|models?|systems?|readers?)"
    r"|ai|a\.i\.|llm|chatgpt|gpt(?:-?\d)?|claude|gemini|copilot|chat ?bot|language model"
)
_TRADE = r"(?:sell|buy|liquidate|short|dump|close|unwind|exit|dispose of|offload|transfer|withdraw|send|wire|move|approve|execute|place|submit)"
_EVERYTHING = (
    r"(?:everything|it all|all (?:of )?(?:your |the |our )?(?:\w+ )?(?:positions?|holdings|assets|coins|tokens|crypto|btc|eth|sol|bitcoin|ether|exposure|funds|book)"
    r"|all(?= now| immediately| at once|\.|!|$)|(?:your|the|our) (?:entire |whole )?(?:portfolio|positions?|holdings|book|bags|stack|treasury|wallet|funds)"
    r"|every (?:position|holding|coin|asset)|as much (?:\w+ ){0,2}as (?:you|possible|the account))"
)
_NOT = r"(?<!never )(?<!not )(?<!n't )"


@dataclass(frozen=True)
class Rule:
    name: str
    weight: float
    pattern: re.Pattern[str]
    passes_config_keys: bool = False  # a config's own keys ("agent:", "model:") are not matches (`config_shape`)


def _r(name: str, weight: float, pattern: str, *, passes_config_keys: bool = False) -> Rule:
    return Rule(name, weight, re.compile(pattern, re.IGNORECASE | re.MULTILINE), passes_config_keys)


RULES: tuple[Rule, ...] = (
    _r("overrides instructions", 0.75,
       r"(?<!must not )(?<!should not )(?<!shall not )(?<!do not )(?<!may not )(?<!never )(?<!n't )\b(?:ignore|disregard|forget|override|overrule|bypass|skip|drop|abandon|discard|neglect|(?:set|put|cast|push) aside)\s+(?:all\s+|any\s+|the\s+|your\s+|my\s+|these\s+|those\s+|its\s+)*"
       r"(?:previous\s+|prior\s+|above\s+|earlier\s+|preceding\s+|original\s+|initial\s+|current\s+|existing\s+|system\s+|safety\s+|risk\s+|trading\s+|old\s+|usual\s+)*"
       r"(?:instructions?|prompts?|rules|guidelines|directives|guardrails|constraints|context|programming|policies|limits|restrictions|guidance|orders|checks)\b"),
    _r("overrides instructions (other language)", 0.75,
       r"\bignor(?:ez|er|e)\s+(?:toutes\s+)?(?:les\s+)?(?:instructions|consignes|règles)"
       r"|\bignor(?:a|ar|e)\s+(?:todas\s+)?(?:las\s+)?(?:instrucciones|reglas)"
       r"|\bignorier(?:e|en)\s+(?:alle\s+)?(?:vorherigen\s+|bisherigen\s+)?(?:anweisungen|regeln|instruktionen)"
       r"|\bignor(?:a|are)\s+(?:tutte\s+)?(?:le\s+)?(?:istruzioni|regole)"
       r"|игнорир\w*\s+(?:\w+\s+)?(?:инструкци|правил)|忽略.{0,8}(?:指令|指示|规则)|無視.{0,8}(?:指示|命令)"),
    _r("replaces instructions", 0.6,
       r"\b(?:new|updated|revised|real|actual|true|secret|hidden|override)\s+(?:system\s+)?(?:instructions?|prompt|directives?|orders|task|objective|mission)\s*(?:[:\-]|are\b|is\b|follow)"),
    _r("names the system prompt", 0.4, r"\b(?:system prompt|system message|developer message|developer mode|dan mode|jailbreak|do anything now)\b"),
    _r("mentions prompt injection", 0.3, r"\bprompt injection\b"),
    _r("addresses the model", 0.6,
       rf"(?:^|[.!?:;>]\s*|<!\[CDATA\[\s*|\b(?:dear|attention|hey|hello|note to|message (?:to|for)|instructions? for|to)\s+(?:the\s+|all\s+|any\s+)?)(?:{_MODEL})\s*[,:!]"
       rf"|\b(?:you are|you're) (?:now )?(?:an? |the )?(?:helpful )?(?:{_MODEL})\b|\bas (?:an? |the )(?:helpful )?(?:{_MODEL})\b"
       r"|\b(?:if you are|if you're) (?:an? |the )?(?:ai|llm|language model|assistant|agent|bot|model)\b",
       passes_config_keys=True),
    _r("speaks to automated readers", 0.55,
       r"\b(?:any|every|all|an?|the)\s+(?:automated\s+|ai\s+|autonomous\s+|machine\s+)?(?:language models?|llms?|ai|agents?|bots?|systems?|readers?|models?)\s+"
       r"(?:that\s+|which\s+|who\s+)?(?:is\s+|are\s+)?(?:reading|reads|parsing|parses|processing|processes|ingesting|ingests|ingest|summari[sz]ing|summari[sz]es|scraping|sees)\b"
       r"|\bfor (?:machine|automated|ai|llm) (?:readers|systems|agents)\b|\baddressed to (?:any |the |all )?(?:ai|language model|llm|agent|bot|model)"),
    _r("claims authority", 0.5,
       r"\b(?:i am|i'm|this is|message from|on behalf of|authori[sz]ed by|signed,?)\s+(?:your|the)\s+(?:developer|administrator|admin|operator|owner|creator|principal|risk manager|head trader|cio|supervisor|compliance officer)\b"
       r"|\b(?:admin|administrator|developer|root)\s+(?:override|command|mode|authori[sz]ation)\b"
       r"|\b(?:admin|administrator|system|developer|root|principal|operator)\s+(?:override|command|notice|note|instruction|message|update|alert)\s*:"
       r"|\b(?:update|message|note|notice) from (?:your|the) (?:supervisor|admin|administrator|developer|operator|principal|risk manager)\b"
       r"|\b(?:the )?(?:desk|principal|risk (?:team|manager)|human) (?:has|have) (?:already )?(?:approved|authori[sz]ed|signed off)\b"),
    _r("sets up a role play", 0.5,
       r"\blet'?s play a game\b|\bpretend (?:you are|you're|to be)\b|\bimagine (?:you are|you're|the (?:limits|rules|guardrails)|there (?:are|were) no)\b"
       r"|\bact as (?:an? |the )?(?:\w+ )?(?:model|agent|trader|ai|assistant|bot)\b|\bwith(?:out)? no (?:rules|limits|restrictions)\b|\bwithout (?:any )?restrictions\b|\bunrestricted\b"),
    _r("orders a trade", 0.55,
       rf"(?:^|[.!?:;>]\s*|\b(?:you must|you should|you need to|you have to|you will|you are to|immediately|now|urgently|quickly|must|please)\s+){_TRADE}\s+(?:now\s+|immediately\s+)?{_EVERYTHING}"),
    _r("urges an immediate trade", 0.35,
       rf"(?:^|[.!?:;>]\s*){_TRADE}\s+(?:\w+\s+){{0,3}}(?:now|immediately|right now|right away|at once|without delay|before (?:it'?s too late|the close|anyone))\b"),
    _r("recommends an exit to its reader", 0.35,
       r"\b(?:recommend|conclude|required to|should|must)\b[^.]{0,40}\b(?:exit from all|sell(?:ing)? (?:every|all|everything)|reduce exposure to zero|liquidat\w+ (?:every|all|your))"),
    _r("asks for secrecy or skipped review", 0.5,
       r"\b(?:do not|don'?t|never|without)\s+(?:tell(?:ing)?|inform(?:ing)?|alert(?:ing)?|notify(?:ing)?|ask(?:ing)?|consult(?:ing)?|wait(?:ing)? for|involv(?:e|ing)|mention(?:ing)?)\s+(?:the\s+|a\s+|any\s+|your\s+)?"
       r"(?:human|humans|principal|principals|user|users|operator|risk|compliance|approval|approver|anyone|desk|supervisor|review(?:er)?)"
       r"|\b(?:do not|don'?t|never)\s+(?:mention|reveal|disclose|repeat|show)\s+(?:this|these|the)\s+(?:instructions?|messages?|notes?|orders?|text)\b"
       r"|\btell no one\b|\bwithout (?:human |principal |any )?(?:approval|review|confirmation|sign-?off|oversight)\b"
       r"|\b(?:skip|bypass|circumvent|disable|turn off|switch off)\s+(?:the\s+)?(?:approval|review|confirmation|circuit breaker|breaker|risk checks?|guardrails?|human|governor)\b"),
    _r("asks for secrets", 0.55,
       rf"{_NOT}\b(?:reveal|print|show|output|repeat|leak|send|share|disclose|tell me)\s+(?:me\s+)?(?:your|the)\s+(?:system prompt|instructions|prompt|api keys?|private keys?|credentials|passwords?|secrets?|seed phrase|keys)\b"),
    _r("dictates the output", 0.55,
       r"\b(?:respond|reply|answer|output|return)\s+(?:only\s+)?(?:with|in)\s+(?:the following|json|exactly|this)\b|\brepeat after me\b|\byour (?:new |real |only )?(?:task|goal|objective|job|purpose|role) (?:is|are|now is)\b"
       r"|\b(?:from now on|henceforth|going forward),? (?:you|the (?:ai|agent|assistant|model))\b"),
    _r("carries a directive", 0.6, r"[\"']?(?:directive_id|notional_usd)[\"']?\s*[:=]|[\"']confidence[\"']\s*:\s*[01]"),
)

# Rules on the text before markup was stripped.
MARKUP_RULES: tuple[Rule, ...] = (
    _r("chat-template tokens", 0.75,
       r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|>|\[/?INST\]|<</?SYS>>|</?(?:system|instructions?|assistant|prompt)>"
       r"|^#{1,6}\s*(?:system|system prompt|system message|instructions?|assistant)\s*:?\s*$|\b(?:system|assistant)\s*:\s*(?:you|ignore|new)"),
    _r("hidden markup", 0.35, r"<!--|display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|opacity\s*:\s*0(?![.\d]*[1-9])|<\w+[^<>]{0,300}\bhidden\b"),
)

# What each rule cannot match without: words in lower case, one of which any match holds.
# Most text holds none of a rule's words, and a substring test is far cheaper than the
# pattern, so the pattern runs only where it could match (the same verdicts, tested on
# the whole corpus: `test_screen.py`). A rule absent here always runs.
_TRADE_WORDS = ("sell", "buy", "liquidate", "short", "dump", "close", "unwind", "exit", "dispose of", "offload", "transfer", "withdraw", "send", "wire", "move", "approve", "execute", "place", "submit")
NEEDS: dict[str, tuple[str, ...]] = {
    "overrides instructions": ("instruction", "prompt", "rules", "guidelines", "directives", "guardrails", "constraints", "context",
                               "programming", "policies", "limits", "restrictions", "guidance", "orders", "checks"),
    "overrides instructions (other language)": ("ignor", "игнорир", "忽略", "無視"),
    "replaces instructions": ("instruction", "prompt", "directive", "orders", "task", "objective", "mission"),
    "names the system prompt": ("system prompt", "system message", "developer message", "developer mode", "dan mode", "jailbreak", "do anything now"),
    "mentions prompt injection": ("prompt injection",),
    "speaks to automated readers": ("read", "pars", "process", "ingest", "summari", "scraping", "sees", "systems", "agents", "addressed to"),
    "claims authority": ("developer", "admin", "operator", "owner", "creator", "principal", "risk manager", "head trader", "cio",
                         "supervisor", "compliance officer", "root", "system", "approved", "authori", "signed off"),
    "sets up a role play": ("play a game", "pretend", "imagine", "act as", "no rules", "no limits", "restrictions", "unrestricted"),
    "orders a trade": _TRADE_WORDS,
    "urges an immediate trade": _TRADE_WORDS,
    "recommends an exit to its reader": ("exit from all", "sell", "reduce exposure to zero", "liquidat"),
    "asks for secrecy or skipped review": ("not", "don", "never", "without", "tell no one", "skip", "bypass", "circumvent", "disable", "turn off", "switch off"),
    "asks for secrets": ("prompt", "instructions", "key", "credentials", "password", "secret", "seed phrase"),
    "dictates the output": ("respond", "reply", "answer", "output", "return", "repeat after me", "task", "goal", "objective", "job", "purpose", "role",
                            "from now on", "henceforth", "going forward"),
    "carries a directive": ("directive_id", "notional_usd", "confidence"),
    "chat-template tokens": ("<|", "inst]", "sys>>", "system", "instruction", "assistant", "prompt"),
    "hidden markup": ("<!--", "display", "visibility", "font-size", "opacity", "hidden"),
}
# What `re.IGNORECASE` equates with an ASCII letter that `str.lower` does not: dotless and
# dotted i, the long s.
_FOLD = str.maketrans({"ı": "i", "İ": "i", "ſ": "s"})


def folded(text: str) -> str:
    """`text` in lower case, as the rules' `NEEDS` are looked up in it."""
    return text.translate(_FOLD).lower()


def could_match(rule: Rule, lowered: str) -> bool:
    """Whether `rule` could match the text `lowered` (`folded`) is of."""
    needs = NEEDS.get(rule.name)
    return needs is None or any(map(lowered.__contains__, needs))


# Tricks that carry instructions past a reader.
SPACED_LETTERS = re.compile(r"\b(?:\w[ \-_.]){4,}\w\b")
BASE64_BLOB = re.compile(r"[A-Za-z0-9+/]{20,}={0,2}")
LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "|": "i"})
_INNER_HYPHEN = re.compile(r"(?<=\w)[-_.·](?=\w)")

HIDDEN_WEIGHT = {"bidi control": 0.55, "tag character": 0.75, "zero-width": 0.25, "variation selector": 0.25,
                 "format character": 0.2, "private or unassigned": 0.2, "control character": 0.2,
                 "emoji part": 0.0, "joiner": 0.0, "direction mark": 0.05, "soft hyphen": 0.05}
INTERLEAVED_WEIGHT = 0.6  # zero-width characters between most letters: no script writes that way


# A quotation: what reporting quotes of an attack ("researchers hid the line "pretend you
# are the admin" in a calendar invite") is weaker evidence than the same words said to the
# reader. Quotation marks each the right way round, a straight one opening after a space or
# punctuation and closing before one (an inch mark or an apostrophe opens nothing; an
# apostrophe inside a word, "user's", does not close a single quote, and a straight
# single quote opens on a letter and holds one sentence at most, so "'90s" and "investors'"
# cannot pair up around an order), and never a quote with next to nothing around it (a
# text that is only a quotation is saying it).
_QUOTED = re.compile(
    r'(?<!\w)"([^"\n]{1,300})"(?!\w)|“([^“”\n]{1,300})”|«([^«»\n]{1,300})»|„([^„“”\n]{1,300})[“”]|「([^「」\n]{1,300})」|『([^『』\n]{1,300})』'
    r"|(?<![\w'])'(?=[^\W\d_])((?:[^'\n.!?]|[.!?](?!\s)|(?<=\w)'(?=\w)){1,300})'(?![\w'])|‘([^‘’\n]{1,300})’"
)
QUOTE_CONTEXT_LETTERS = 8  # letters outside the quotation marks, at least, for them to count as a quotation
QUOTED_DISCOUNT = 0.5  # a rule's weight on a match inside quotation marks
UNDISCOUNTED = 0.75  # rules this strong count in full even quoted (overriding instructions): a review found a quoted override said to the reader passing


def quoted_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    if not any(q in text for q in "\"“«„「『'‘"):
        return spans
    letters: int | None = None
    for m in _QUOTED.finditer(text):
        group = next(i for i in range(1, 9) if m.group(i) is not None)
        if letters is None:
            letters = sum(map(str.isalpha, text))
        if letters - sum(map(str.isalpha, m.group(group))) >= QUOTE_CONTEXT_LETTERS:
            spans.append(m.span(group))
    return spans


def _inside(m: re.Match[str], spans: list[tuple[int, int]], starts: list[int]) -> bool:
    """Whether `m` lies within one of `spans` (in order, not overlapping; `starts` their starts):
    only the last span starting at or before it can hold it, so a text of many quotes and many
    matches is not read quadratically."""
    i = bisect.bisect_right(starts, m.start()) - 1
    return i >= 0 and m.end() <= spans[i][1]


# A config names its model or agent with the words an attack uses to address one
# ("agent:\n  name: digest\n  model: gpt-4o-mini"): in the fresh splits, configs were
# the rules' largest source of false positives. An item is read as a config when four in
# five of its lines (at least three) are keys with short values, list items, comments,
# brackets or the indented lines of a block value, and no key repeats at the top level
# (a mapping names a key once; a transcript repeats its speakers). There, "addresses the
# model" passes over a key that stands at the start of its own line with a scalar value,
# and only there: the same word anywhere else, "AI agent:" inside a value, and every
# other rule count as in any text. (Designed with a review that broke three looser versions.)
_KEY_LINE = re.compile(r"""(?:-\s+)?["']?([A-Za-z_][\w.-]{0,60})["']?\s*[:=](?:\s|$)""")
_CONFIG_LINE = re.compile(r"""(?:#|//|-\s|-$|[\[\]{}](?:[\s,]*$|\S*\]\s*$))""")
_BLOCK_VALUE = re.compile(r"""[:=]\s*(?:[|>][-+]?\d?|\"\"\"|''')\s*$""")
# A value that keeps a line a config's: nothing, a block, something quoted or bracketed,
# or a few words. A transcript's turn ("Assistant: Sure, here is the summary.") is a sentence.
_SHORT_VALUE = re.compile(r"""$|[|>"'\[{(]|\S+(?:[ \t]+\S+){0,3}[ \t]*(?:#.*)?$""")
# The value of a key that may be passed over: nothing (a mapping follows), a block
# indicator, or one scalar token ("gpt-4o-mini", "true", "0.2", "研报摘要助手").
_SCALAR = re.compile(r"""$|[|>][-+]?\d?$|["']?[^\s:,!"']{1,80}["']?,?$""")
_COMMENT_AFTER = re.compile(r"\s+#.*$")
_LABEL = re.compile(r"(?:^|[^\w.-])([^\W\d_][\w .-]*?)\s*[,:!]$")  # the whole label: "AI agent" is no key


@dataclass(frozen=True)
class ConfigShape:
    keys: frozenset[str] = frozenset()  # every key of the config (lower case); none when the text is no config
    at: frozenset[int] = frozenset()  # where each key that may be passed over starts, in the text read
    pairs: frozenset[tuple[str, str]] = frozenset()  # those keys with their values, for readings whose offsets differ


def config_shape(raw: str) -> ConfigShape:
    """How `raw` reads as a config (YAML, TOML, JSON), if it does."""
    lines: list[tuple[int, str]] = []
    offset = 0
    for line in raw.splitlines(keepends=True)[:2000]:
        if line.strip():
            lines.append((offset, line.rstrip("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")))
        offset += len(line)
    if len(lines) < 3:
        return ConfigShape()
    keys: set[str] = set()
    at: dict[int, tuple[str, str]] = {}
    top: Counter[str] = Counter()
    config, block = 0, None  # block: the indentation of a key whose value is the indented lines under it
    for start, line in lines:
        indent = len(line) - len(line.lstrip())
        if block is not None and indent > block:
            config += 1
            continue
        block = None
        stripped = line.strip()
        key = _KEY_LINE.match(stripped)
        value = stripped[key.end():].strip() if key else ""
        if key and _SHORT_VALUE.match(value):
            config += 1
            name = key.group(1).lower()
            keys.add(name)
            if _BLOCK_VALUE.search(stripped):
                block = indent
            if indent == 0 and not stripped.startswith("-"):
                top[name] += 1
            if _SCALAR.match(_COMMENT_AFTER.sub("", value)):
                at[start + indent + key.start(1)] = (name, value)
        elif _CONFIG_LINE.match(stripped):
            config += 1
    if config < 0.8 * len(lines) or any(n > 1 for n in top.values()):
        return ConfigShape()
    return ConfigShape(frozenset(keys), frozenset(at), frozenset(at.values()))


def _is_own_key(m: re.Match[str], text: str, shape: ConfigShape, exact: bool) -> bool:
    """Whether a match of "addresses the model" is one of the config's own keys. In the text
    `config_shape` read (`exact`), it must stand where such a key stands; in a reading whose
    offsets differ (cleaned, de-obfuscated), it must be followed by that key's own value and
    then the end or another of the config's keys ("agent: name: digest", "model: gpt-4o role: system")."""
    label = _LABEL.search(m.group(0))
    if not label:
        return False
    if exact:
        return m.start() + label.start(1) in shape.at
    name = label.group(1).lower()
    rest = text[m.end():m.end() + 200].lstrip()
    keys = shape.keys | {deobfuscate(k) for k in shape.keys}
    for key, value in shape.pairs:
        if key != name:
            continue
        for said in {value, deobfuscate(value)}:
            if not rest.startswith(said):
                continue
            after = rest[len(said):]
            if not after.strip():
                return True
            if (after[:1].isspace() or not said) and (following := _KEY_LINE.match(after.lstrip())) and following.group(1).lower() in keys:
                return True
    return False


def _first_match(pattern: re.Pattern[str], text: str, spans: list[tuple[int, int]],
                 shape: ConfigShape | None = None, exact: bool = False) -> tuple[re.Match[str] | None, bool]:
    """The first match outside quotation marks, else the first inside them (and whether it is):
    a quoted decoy cannot hide the same words said outright further on. A config's own key
    (`shape`) is passed over, and the search goes on from its last character, so a label
    it swallowed ("agent: AI agent: ...") is still read."""
    first = None
    starts = [a for a, _ in spans]
    pos = 0
    while (m := pattern.search(text, pos)) is not None:
        if shape is not None and shape.at and _is_own_key(m, text, shape, exact):
            pos = max(m.end() - 1, m.start() + 1)
            continue
        pos = max(m.end(), m.start() + 1)
        if not spans or not _inside(m, spans, starts):
            return m, False
        first = first or m
    return first, first is not None


@dataclass(frozen=True)
class Screening:
    flagged: bool  # the rules' own verdict (score at `THRESHOLD`): it decides where no model reads the item
    score: float
    reasons: list[str]
    hiding: bool = False  # text hidden as no honest writer hides it: holds the item whatever a model says


def _snippet(m: re.Match[str]) -> str:
    s = m.group(0).strip()
    return s if len(s) <= 60 else s[:57] + "..."


def join_spaced(text: str) -> str:
    """S p a c e d - o u t letters joined into their word."""
    return SPACED_LETTERS.sub(lambda m: re.sub(r"[ \-_.]", "", m.group(0)), text)


# A word that mixes letters with digits or leet symbols ("1gn0re", "$ell"): a price, a
# date or a ticker's number is left alone, so most text needs no second reading.
LEET_WORD = re.compile(r"(?<![\w@$|])(?=[\w@$|]*[A-Za-z])(?=[\w@$|]*[0-9@$|])[\w@$|]{3,}")


def deobfuscate(text: str) -> str:
    """Spaced-out letters joined, hyphens inside words dropped, leetspeak read as letters."""
    return LEET_WORD.sub(lambda m: m.group(0).translate(LEET), _INNER_HYPHEN.sub("", join_spaced(text)))


def readable_text(raw: bytes, min_chars: int = 1) -> str | None:
    """`raw` as text, if it is UTF-8 of at least `min_chars` characters, nearly all printable."""
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(decoded) >= max(min_chars, 1) and sum(ch.isprintable() for ch in decoded) / len(decoded) > 0.9:
        return decoded
    return None


def base64_spans(text: str, min_chars: int = 1) -> list[tuple[int, str]]:
    """The readable text carried as base64 inside `text`, each with where its blob starts."""
    out = []
    for m in BASE64_BLOB.finditer(text):
        blob = m.group(0)
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        if (decoded := readable_text(raw, min_chars)) is not None:
            out.append((m.start(), decoded))
    return out


def base64_texts(text: str, min_chars: int = 1) -> list[str]:
    """The readable text carried as base64 inside `text`."""
    return [decoded for _, decoded in base64_spans(text, min_chars)]


def screen(text: str, *, markup: str = "", hidden: dict[str, int] | None = None) -> Screening:
    """Screen cleaned `text`; `markup` is the text before markup was stripped, `hidden`
    the hidden characters that cleaning removed (both from `sanitize.text.clean`)."""
    reasons: list[str] = []
    keep = 1.0
    variants = [("", text)]
    if markup and markup != text:
        variants.append((" (in markup)", markup))
    plain = deobfuscate(text)
    if plain != text:
        variants.append((" (obfuscated)", plain))
    blobs = base64_texts(text)
    variants += [(" (base64)", b) for b in blobs]
    spans = {id(v): quoted_spans(v) for _, v in variants}
    lowered = {id(v): folded(v) for _, v in variants}
    read = markup or text
    shape: ConfigShape | None = None  # read only for a rule that passes over a config's keys
    for rule in RULES:
        found = None
        for where, variant in variants:
            if not could_match(rule, lowered[id(variant)]):
                continue
            if rule.passes_config_keys and shape is None:
                shape = config_shape(read)
            m, quoted = _first_match(rule.pattern, variant, spans[id(variant)] if rule.weight < UNDISCOUNTED else [],
                                     shape if rule.passes_config_keys else None, variant == read)
            if m and not quoted:
                found = (where, m, rule.weight)
                break
            if m and found is None:  # quoted: kept unless the rule also matches unquoted
                found = (f"{where} (quoted)", m, rule.weight * QUOTED_DISCOUNT)
        if found:
            where, m, weight = found
            keep *= 1.0 - weight
            reasons.append(f"{rule.name}{where}: {_snippet(m)!r}")
    raw, raw_lowered = markup or text, folded(markup or text)
    for rule in MARKUP_RULES:  # on the text before markup was stripped: quotes there may be attributes, so no discount
        m = rule.pattern.search(raw) if could_match(rule, raw_lowered) else None
        if m:
            keep *= 1.0 - rule.weight
            reasons.append(f"{rule.name}: {_snippet(m)!r}")
    if blobs:
        keep *= 1.0 - 0.3
        reasons.append(f"encoded text: {len(blobs)} base64 blob(s)")
    if plain != text and SPACED_LETTERS.search(text):
        keep *= 1.0 - 0.2
        reasons.append("spaced-out letters")
    zero_width = (hidden or {}).get("zero-width", 0) + (hidden or {}).get("joiner", 0)  # a script's joiners, between most letters, are interleaving too
    hiding = (hidden or {}).get("tag character", 0) > 0  # what is left after a flag emoji's own tags: ASCII spelled invisibly
    if zero_width >= 6 and zero_width >= 0.2 * sum(ch.isalpha() for ch in text):
        keep *= 1.0 - INTERLEAVED_WEIGHT
        reasons.append(f"letters interleaved with zero-width characters: {zero_width}")
        hiding = True
    for kind, n in sorted((hidden or {}).items()):
        if HIDDEN_WEIGHT.get(kind, 0.2) == 0.0:
            continue  # the parts of emoji: invisible, and ordinary
        keep *= 1.0 - HIDDEN_WEIGHT.get(kind, 0.2)
        reasons.append(f"hidden characters: {n} {kind}")
    score = round(1.0 - keep, 4)
    return Screening(score >= THRESHOLD, score, reasons, hiding)
