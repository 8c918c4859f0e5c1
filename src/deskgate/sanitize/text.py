"""Turning untrusted text into plain, visible text.

Unicode NFKC normalisation (full-width and compatibility forms become plain ones),
then every invisible, bidirectional-control, tag and private-use character goes,
then markdown and HTML are reduced to their text (links keep their words, not
their targets; scripts, styles and comments vanish), then whitespace is collapsed.
What was removed is counted, because hiding characters is itself a sign of an
attack (the screen weighs it).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

# Explicit bidirectional controls and isolates (Trojan Source), and the
# zero-width family; Cf covers most of them, listed here so the reason is named.
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e")
# Combining marks that show nothing: the grapheme joiner and Mongolian's variation
# selectors (kept only inside Mongolian). A review put them inside "ig\u034fnore".
INVISIBLE_MARKS = frozenset("\u034f\u180b\u180c\u180d\u180f")
MAX_INPUT_CHARS = 20_000  # a news item or research note; longer input is cut before anything else


@dataclass
class Cleaned:
    text: str
    removed: dict[str, int] = field(default_factory=dict)  # what kind of hidden character -> how many
    had_markup: bool = False
    visible: str = ""  # normalised and stripped of hidden characters, markup still in (for the screen)
    smuggled: str = ""  # the ASCII that tag characters spelled (outside a flag's emoji), invisible to a reader


# Tag characters spell ASCII no reader sees (U+E0020-E007E: "ASCII smuggling"); the
# flags of England, Scotland and Wales are the only emoji that use them (the Unicode
# recommended set). Any other run, a flag-shaped one included ("🏴" + up to six tag
# letters + the cancel tag, again and again), is read as the text it spells.
_TAG_RUN = re.compile("[\U000e0020-\U000e007e]+")
_FLAG = re.compile("\U0001f3f4\U000e0067\U000e0062(?:\U000e0065\U000e006e\U000e0067|\U000e0073\U000e0063\U000e0074|\U000e0077\U000e006c\U000e0073)\U000e007f")


def smuggled_text(text: str) -> str:
    """What the tag characters in `text` spell, run after run."""
    if max(text, default=" ") < "\U000e0020":
        return ""
    return " ".join(m.group(0).translate(_UNTAG) for m in _TAG_RUN.finditer(_FLAG.sub(" ", text)))


_UNTAG = {cp: cp - 0xE0000 for cp in range(0xE0020, 0xE007F)}


# Invisible characters that ordinary text uses: the marks that keep an Arabic or Hebrew
# name the right way round in a Latin sentence, the joiners inside words of scripts that
# spell with them (Persian, Sinhala, Devanagari), and the joiners, selectors and tags
# inside emoji (👨‍💻, ❤️, 🏳️‍🌈, the flag of Scotland). Removed like the others, but counted
# as what they are, which is not a sign of an attack.
DIRECTION_MARKS = frozenset("\u200e\u200f\u061c")
ISOLATES = frozenset("\u2066\u2067\u2068\u2069")
_RTL = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")


# Scripts that spell with zero-width joiners and non-joiners between their letters:
# Arabic (Persian, Urdu), the Indic scripts through Sinhala, Myanmar, Khmer, Mongolian.
_JOINING = re.compile("[\u0600-\u08ff\u0900-\u0dff\u1000-\u109f\u1780-\u18af\ufb50-\ufdff\ufe70-\ufefc]")


def _is_emoji(ch: str) -> bool:
    cp = ord(ch)
    return 0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0x2B00 <= cp <= 0x2BFF or cp in (0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139)


def _kind(ch: str) -> str | None:
    """Why `ch` must go, or None to keep it."""
    if ch in BIDI:
        return "bidi control"
    if ch == "\u00ad":
        return "soft hyphen"  # where a long word may break: German and Dutch text is full of them
    if ch in ZERO_WIDTH or ch in INVISIBLE_MARKS:
        return "zero-width"
    cp = ord(ch)
    if 0xE0000 <= cp <= 0xE007F:
        return "tag character"  # invisible ASCII smuggling
    if 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF:
        return "variation selector"
    cat = unicodedata.category(ch)
    if cat == "Cf":
        return "format character"
    if cat in ("Co", "Cs", "Cn"):
        return "private or unassigned"
    if cat == "Cc" and ch not in "\n\t":
        return "control character"
    return None


def _ordinary(text: str, i: int, kind: str, in_flag: bool) -> str | None:
    """The ordinary use an invisible character at `text[i]` is put to, if any."""
    ch = text[i]
    before = text[i - 1] if i else ""
    after = text[i + 1] if i + 1 < len(text) else ""
    if kind == "tag character" and in_flag:
        return "emoji part"
    if ch == "\u200d":
        base = text[i - 2] if before in "\ufe0e\ufe0f" and i >= 2 else before  # 🏳️‍🌈: the joiner follows the selector
        if _is_emoji(base or " ") and _is_emoji(after or " "):
            return "emoji part"
    if ch in "\u200c\u200d\u180b\u180c\u180d\u180f" and before and after and _JOINING.match(before) and _JOINING.match(after):
        return "joiner"  # Persian's half-space, a Sinhala or Devanagari conjunct: how these scripts are spelt
    if ch in "\ufe0e\ufe0f" and before and (_is_emoji(before) or before.isdigit() or before in "#*"):  # text or emoji style
        return "emoji part"
    if ch in DIRECTION_MARKS or ch in ISOLATES:
        near = text[max(0, i - 40) : i + 40]
        if _RTL.search(near):
            return "direction mark"
    return None


_VARIATION_SELECTOR = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef\u034f\u180b-\u180d\u180f]")  # and the invisible marks: printable to Python


def strip_hidden(text: str) -> tuple[str, dict[str, int]]:
    if text.replace("\n", "").replace("\t", "").isprintable() and not _VARIATION_SELECTOR.search(text):
        return text, {}  # nothing `_kind` removes: no Cc, Cf, Cs, Co or Cn character, no selector or invisible mark
    return strip_each(text)


def strip_each(text: str) -> tuple[str, dict[str, int]]:
    """`strip_hidden` without its fast path: every character asked what it is."""
    removed: dict[str, int] = {}
    out = []
    flags = {i for m in _FLAG.finditer(text) for i in range(m.start() + 1, m.end())} if "\U0001f3f4" in text else set()
    for i, ch in enumerate(text):
        kind = _kind(ch)
        if kind is None:
            out.append(ch)
            continue
        kind = _ordinary(text, i, kind, i in flags) or kind
        removed[kind] = removed.get(kind, 0) + 1
    return "".join(out), removed


# HTML to text with bounded, linear patterns: html.parser rescans unclosed tags and is
# quadratic on input like "<a <a <a ..." (a feed must not be able to stall the desk).
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_CDATA = re.compile(r"<!\[CDATA\[(.*?)(?:\]\]>|$)", re.S)
_SKIPPED = re.compile(r"<(script|style|template|noscript|head)\b[^<>]{0,1000}>.*?(?:</\1\s*>|$)", re.S | re.I)
_BLOCK_TAG = re.compile(r"</?(?:p|div|br|li|ul|ol|tr|td|th|table|h[1-6]|blockquote|section|article|header|footer|hr|title)\b[^<>]{0,1000}>", re.I)
_TAG = re.compile(r"</?[A-Za-z][^<>]{0,1000}>|<![^<>]{0,1000}>|<\?[^<>]{0,1000}>")


def html_to_text(fragment: str) -> str:
    """The text of an HTML fragment: tags dropped (block tags leave a space, inline tags
    nothing, so a word split by tags stays one word), script/style/comments with their
    contents, entities decoded. A CDATA section (RSS and Atom put descriptions in one)
    is read as its contents, and a <title> outside <head> (a feed's headline) as text."""
    text = _CDATA.sub(r"\1", fragment)  # as XML reads it: "ign<![CDATA[]]>ore" is one word
    text = _COMMENT.sub(" ", text)
    text = _SKIPPED.sub(" ", text)
    text = _BLOCK_TAG.sub(" ", text)
    text = _TAG.sub("", text)
    return html.unescape(text)


_md = MarkdownIt("commonmark")


def markdown_to_text(text: str) -> str:
    """The words of a markdown document, HTML inside it included, markup gone."""
    out: list[str] = []
    for tok in _md.parse(text):
        if tok.type == "inline":
            # Text escaped, inline HTML as is, then read as one HTML fragment: a <script>
            # or a comment spans several tokens and must vanish whole.
            buf: list[str] = []
            for child in tok.children or []:
                if child.type in ("text", "code_inline"):
                    buf.append(html.escape(child.content, quote=False))
                elif child.type in ("softbreak", "hardbreak"):
                    buf.append(" ")
                elif child.type == "html_inline":
                    buf.append(child.content)
                elif child.type == "image":
                    buf.append(" " + html.escape("".join(c.content for c in child.children or []), quote=False) + " ")
            out.append(html_to_text("".join(buf)) + " ")
        elif tok.type in ("code_block", "fence"):
            out.append(tok.content + " ")
        elif tok.type == "html_block":
            out.append(html_to_text(tok.content) + " ")
    return "".join(out)


_DECLARATION = re.compile(r"<\?|<!(?!\[CDATA\[)")  # a processing instruction or declaration: text no reader sees
_OPEN_TAG = re.compile(r"<([A-Za-z][\w:.-]{0,60})((?:\s[^<>]{0,1000})?)/?>")
_ATTRIBUTE = re.compile(r"""([A-Za-z_:][\w:.-]{0,60})\s*=\s*(?:"([^"]{0,1000})"|'([^']{0,1000})'|([^\s"'=<>`]{1,1000}))""")


def attribute_text(markup: str) -> str:
    """An item that is only elements with attributes (`<tick code="8306" price="1523.5"/>`,
    a quote feed's XML) as text: `tick; code: 8306; price: 1523.5`. Its data is in the
    attributes, and without this it would be empty after cleaning and held as hiding
    something. Each value starts a clause of its own, as it would in plain text (a review:
    glued to `key=` and run together, "Sell everything now." in a `note` escaped the rules'
    sentence anchors and the model's windows). Markup that hid text (a comment, a script,
    a style sheet, a head, a processing instruction or declaration) reads as nothing:
    such an item stays empty and held."""
    if _COMMENT.search(markup) or _SKIPPED.search(markup) or _DECLARATION.search(markup):
        return ""
    parts = []
    for tag in _OPEN_TAG.finditer(markup):
        pairs = [f"{a.group(1)}: {a.group(2) or a.group(3) or a.group(4) or ''}" for a in _ATTRIBUTE.finditer(tag.group(2))]
        if pairs:
            parts.append("; ".join([tag.group(1), *pairs]))
    return html.unescape("; ".join(parts))


_SPACE = re.compile(r"\s+")
DATAMARK = "\u02c6"  # ˆ: what a wrapped item's words are joined with (`item.wrap`), so never part of the text
MARKUP_PASSES = 8  # markup inside a code block inside markup ... is read this deep
_MARKUP_HINT = re.compile(r"[<>*_`#\[\]]|&[a-z#0-9]+;", re.IGNORECASE)


def _visible(text: str, removed: dict[str, int]) -> str:
    """NFKC, hidden characters out (counted into `removed`), NFKC again where they were (a zero-width space kept
    "e" and a combining accent apart: a second cleaning would have joined them), and the
    datamark out: wrapping deletes it, so it must not split a word the screen reads (a
    review: "Ignˆore aˆll prevˆious instruˆctions" passed the screen and reached the LLM
    as "Ignore all previous instructions")."""
    text, found = strip_hidden(unicodedata.normalize("NFKC", text))
    for k, v in found.items():
        removed[k] = removed.get(k, 0) + v
    if found or DATAMARK in text:  # either may have kept a letter and its combining mark apart
        text = unicodedata.normalize("NFKC", text.replace(DATAMARK, ""))
    return text


def _read_markup(text: str, removed: dict[str, int]) -> str:
    """Markup read until nothing changes (a code block's text can be markup again), the
    hidden characters each pass uncovers counted into `removed`."""
    for _ in range(MARKUP_PASSES):
        if not _MARKUP_HINT.search(text):
            break
        before = text
        text = markdown_to_text(text)
        text = html.unescape(text)  # entities a second layer of encoding left behind
        text = html_to_text(text) if "<" in text else text
        text = _visible(text, removed)
        text = _SPACE.sub(" ", text).strip()
        if text == before:
            break
    return _SPACE.sub(" ", text).strip()


def clean(raw: str) -> Cleaned:
    """Plain visible text from untrusted input (idempotent: cleaning twice changes nothing)."""
    text = unicodedata.normalize("NFKC", raw[:MAX_INPUT_CHARS])
    smuggled = smuggled_text(text)
    removed: dict[str, int] = {}
    text = _visible(text, removed)  # its NFKC finds the text already normal
    visible = text
    had_markup = bool(_MARKUP_HINT.search(text))
    text = _read_markup(text, removed)
    if not text and had_markup:  # only elements with attributes: their data, read the same way
        text = _read_markup(_visible(attribute_text(visible), removed), removed)
    return Cleaned(text, removed, had_markup, visible, smuggled)
