"""Build the three evaluation corpora (prose, code, abstracts) and the matching training text.

Sources (all pinned by version and sha256, fetched with the ordinary package clients):

* prose     -- the Python 3.11 documentation, Debian package ``python3.11-doc`` (HTML pages, PSF licence);
* code      -- the Python 3.11 standard library, Debian packages ``libpython3.11-minimal`` and
               ``libpython3.11-stdlib`` (``.py`` files, PSF licence);
* abstracts -- the PLOS "starter corpus" of 122 JATS-XML research articles shipped inside the PyPI wheel
               ``allofplos==0.11.1`` (per-article licences; only CC BY and CC0 articles are used).

Each source document (one HTML page, one ``.py`` file, one article) goes wholly to either the held-out
evaluation set or the training set.  Documents are ordered by ``sha256("<domain>:<document id>")`` and taken
into the held-out set in that order while they fit (see :func:`split`); everything else is training text.

Outputs::

    lampref/data/corpora/{prose,code,abstracts}.txt   held-out evaluation text (committed)
    lampref/data/corpora/PROVENANCE.json              sources, licences, sizes, hashes, split rule
    build/train/{prose,code,abstracts}.txt            training text (git-ignored)

In every output file, documents are separated by a line holding only ``<|endoftext|>`` (GPT-2's end-of-text
token written out); no document contains that string.  Token counts use :class:`lampref.gpt2.Tokenizer`
(``encode_ordinary`` of each document; separators not counted).

Usage::

    python scripts/build_corpora.py [--cache build/sources]

Needs ``apt-get`` (Debian bookworm archive) and ``pip`` only when the pinned archives are not already in the
cache folder; the extraction itself is pure Python (``.deb`` files are read as ``ar`` + ``tar`` archives).
"""

from __future__ import annotations

import argparse
import hashlib
import html.parser
import io
import json
import re
import subprocess
import sys
import tarfile
import time
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lampref.gpt2 import Tokenizer  # noqa: E402

SEP = "<|endoftext|>"
EVAL_TARGET = 300_000  # bytes of held-out text per domain (the committed files stay under 400 KB)
EVAL_DOC_MAX = EVAL_TARGET // 6  # a larger document never goes to the held-out set (keeps it varied)

DEBIAN_VERSION = "3.11.2-6+deb12u9"


@dataclass(frozen=True)
class Archive:
    """One pinned source archive."""

    client: str  # "apt" or "pip"
    name: str
    version: str
    filename: str
    sha256: str
    licence: str


ARCHIVES = {
    "python3.11-doc": Archive(
        "apt",
        "python3.11-doc",
        DEBIAN_VERSION,
        f"python3.11-doc_{DEBIAN_VERSION}_all.deb",
        "5b3594189d6ef9a6963ce0347fd307a1cc67620ad697e144db366070e2e146be",
        "PSF-2.0 (Python documentation; code examples in it also 0BSD)",
    ),
    "libpython3.11-minimal": Archive(
        "apt",
        "libpython3.11-minimal",
        DEBIAN_VERSION,
        f"libpython3.11-minimal_{DEBIAN_VERSION}_amd64.deb",
        "69f41cfa3f4ba17284e538f843069d7529c53c207d2ae17a5b02785944870e33",
        "PSF-2.0",
    ),
    "libpython3.11-stdlib": Archive(
        "apt",
        "libpython3.11-stdlib",
        DEBIAN_VERSION,
        f"libpython3.11-stdlib_{DEBIAN_VERSION}_amd64.deb",
        "10f13e000ee757f5f2d2d3569f9e30546214a0c850acd78695feae373bfa3e53",
        "PSF-2.0",
    ),
    "allofplos": Archive(
        "pip",
        "allofplos",
        "0.11.1",
        "allofplos-0.11.1-py3-none-any.whl",
        "17149c52f089c561885be0eb4827edd6ee1dbaea4d17828c38d39d58b603e1f7",
        "package code MIT; each article under its own licence (only CC BY, any version, and CC0 1.0 used)",
    ),
}


# ----------------------------------------------------------------------------------------------- fetching


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(archive: Archive, cache: Path) -> bytes:
    """Return the archive's bytes, downloading it into `cache` first if needed; check its sha256."""
    path = cache / archive.filename
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        if archive.client == "apt":
            cmd = ["apt-get", "download", f"{archive.name}={archive.version}"]
        else:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "-d",
                str(cache),
                f"{archive.name}=={archive.version}",
            ]
        print("fetching:", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, cwd=cache, check=True, stdout=subprocess.DEVNULL)
    data = path.read_bytes()
    got = sha256_bytes(data)
    if got != archive.sha256:
        raise SystemExit(f"{path}: sha256 {got} differs from the pinned {archive.sha256}")
    return data


def deb_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield (path, content) of the regular files in a ``.deb`` (an ``ar`` archive holding ``data.tar.*``)."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    pos = 8
    while pos < len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size & 1)
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                for info in tar:
                    if info.isfile():
                        f = tar.extractfile(info)
                        assert f is not None
                        yield info.name.removeprefix("./"), f.read()


# ------------------------------------------------------------------------------------------- text helpers


def normalise_prose(text: str) -> str:
    """NFC; inside each paragraph collapse whitespace runs (NBSP included) to one space; paragraphs apart by
    one blank line; no leading/trailing blank lines."""
    text = unicodedata.normalize("NFC", text)
    paras = []
    for block in re.split(r"\n\s*\n", text):
        lines = [re.sub(r"\s+", " ", line).strip() for line in block.split("\n")]
        lines = [line for line in lines if line]
        if lines:
            paras.append("\n".join(lines))
    return "\n\n".join(paras)


# ------------------------------------------------------------------------------------------------- prose

_BLOCK = {
    "p",
    "div",
    "section",
    "li",
    "dd",
    "dt",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "tr",
    "table",
    "ul",
    "ol",
    "dl",
    "figure",
    "caption",
    "figcaption",
    "br",
    "hr",
}
_SKIP_CLASSES = {"headerlink", "highlight", "sig", "sphinxsidebar", "related", "footer", "versionmodified"}


class _DocHTML(html.parser.HTMLParser):
    """Text of Sphinx's ``<div role="main">``, without code blocks, signatures and navigation."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[tuple[str, bool, bool]] = []  # (tag, opens the main body, opens a skipped region)
        self.main_depth = 0  # >0 while inside the main body
        self.skip_depth = 0
        self.table_depth = 0
        self._closing = False

    _VOID: ClassVar[set[str]] = {
        "br",
        "hr",
        "img",
        "meta",
        "link",
        "input",
        "wbr",
        "col",
        "area",
        "base",
        "source",
    }

    def _brk(self, tag: str) -> None:
        """Paragraph break at a block tag; inside a table one line per row, cells apart by a space."""
        if not self.main_depth or self.skip_depth:
            return
        if self.table_depth:
            if tag == "tr":  # called at both ends of a row; the break after it is enough
                self.parts.append("\n" if self._closing else "")
            elif tag in _BLOCK or tag in {"td", "th"}:
                self.parts.append(" ")
        elif tag in _BLOCK:
            self.parts.append("\n\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.parts.append("\n\n")
            self.table_depth += 1
        self._brk(tag)
        if tag in self._VOID:
            return
        classes = set((a.get("class") or "").split())
        is_main = a.get("role") == "main"
        skip = bool(
            tag in {"pre", "script", "style", "nav"}
            or classes & _SKIP_CLASSES
            or any(c.startswith("highlight-") for c in classes)
            or (tag == "dt" and a.get("id") and "sig" in classes)
        )
        self.stack.append((tag, is_main, skip))
        if is_main:
            self.main_depth += 1
        if skip:
            self.skip_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._VOID:
            return
        # pop to the matching open tag (tolerates unclosed <p> and the like)
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                for _t, is_main, skip in self.stack[i:]:
                    if is_main:
                        self.main_depth -= 1
                    if skip:
                        self.skip_depth -= 1
                del self.stack[i:]
                break
        self._closing = True
        self._brk(tag)
        self._closing = False
        if tag == "table" and self.table_depth:
            self.table_depth -= 1
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.main_depth and not self.skip_depth:
            self.parts.append(data.replace("\n", " "))


PROSE_SKIP = re.compile(r"^(genindex.*|search|py-modindex|contents|license|copyright|download|index)\.html$")


def prose_documents(cache: Path) -> tuple[dict[str, str], list[Archive]]:
    arc = ARCHIVES["python3.11-doc"]
    prefix = "usr/share/doc/python3.11/html/"
    docs = {}
    for path, content in deb_members(fetch(arc, cache)):
        if not (path.startswith(prefix) and path.endswith(".html")):
            continue
        rel = path[len(prefix) :]
        if rel.startswith("_") or ("/" not in rel and PROSE_SKIP.match(rel)):
            continue
        if rel.endswith("/index.html"):  # section tables of contents
            continue
        p = _DocHTML()
        p.feed(content.decode("utf-8"))
        p.close()
        text = normalise_prose("".join(p.parts))
        if len(text) >= 200:
            docs[rel] = text
    return docs, [arc]


# -------------------------------------------------------------------------------------------------- code

CODE_SKIP = re.compile(r"(^|/)(tests?|idle_test)/|^_sysconfigdata|^(site|dist)-packages/|^config-")


def code_documents(cache: Path) -> tuple[dict[str, str], list[Archive]]:
    arcs = [ARCHIVES["libpython3.11-minimal"], ARCHIVES["libpython3.11-stdlib"]]
    prefix = "usr/lib/python3.11/"
    docs = {}
    for arc in arcs:
        for path, content in deb_members(fetch(arc, cache)):
            if not (path.startswith(prefix) and path.endswith(".py")):
                continue
            rel = path[len(prefix) :]
            if CODE_SKIP.search(rel):
                continue
            text = content.decode("utf-8")  # verbatim; every stdlib file is UTF-8
            if "gencodec.py" in text:  # machine-generated character-mapping tables
                continue
            if text.strip():
                docs[rel] = text if text.endswith("\n") else text + "\n"
    return docs, arcs


# --------------------------------------------------------------------------------------------- abstracts

JATS_SKIP = {
    "fig",
    "table-wrap",
    "disp-formula",
    "supplementary-material",
    "ref-list",
    "fn-group",
    "ack",
    "graphic",
    "media",
    "object-id",
    "label",
    "alternatives",
    "table",
}
JATS_BLOCK = {"p", "title", "sec", "list-item", "abstract", "boxed-text", "disp-quote", "def-item", "caption"}
NOTICE_TYPES = {"correction", "retraction", "expression-of-concern"}
CC = re.compile(r"creativecommons\.org/(licenses/by/(\d\.\d)|publicdomain/zero/1\.0)")


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _jats_text(el: ET.Element, out: list[str]) -> None:
    tag = _local(el.tag)
    if tag == "inline-formula":  # keep the MathML's text ("p < 0.05", "x2"), not its image alternative
        maths = [m for m in el.iter() if _local(m.tag) == "math"]
        out.append(" ".join("".join(m.itertext()).strip() for m in maths))
        if el.tail:
            out.append(el.tail.replace("\n", " "))
        return
    if tag in JATS_SKIP:
        if el.tail:
            out.append(el.tail)
        return
    if tag in JATS_BLOCK:
        out.append("\n\n")
    if el.text:
        out.append(el.text.replace("\n", " "))
    for child in el:
        _jats_text(child, out)
    if tag in JATS_BLOCK:
        out.append("\n\n")
    if el.tail:
        out.append(el.tail.replace("\n", " "))


def article_licence(perm: ET.Element | None) -> str | None:
    """SPDX-like id of an article's licence when it is CC BY or CC0, else None."""
    if perm is None:
        return None
    raw = ET.tostring(perm, encoding="unicode")
    m = CC.search(raw)
    if m:
        return f"CC-BY-{m.group(2)}" if m.group(2) else "CC0-1.0"
    words = re.sub(r"\s+", " ", "".join(perm.itertext()))
    if "Creative Commons Attribution License" in words:
        return "CC-BY (unversioned 'Creative Commons Attribution License')"
    if "CC0 public domain dedication" in words:
        return "CC0-1.0"
    if "Creative Commons Public Domain Declaration" in words:
        return "CC public-domain declaration"
    return None


def abstracts_documents(cache: Path) -> tuple[dict[str, str], list[Archive], dict[str, dict], list[str]]:
    arc = ARCHIVES["allofplos"]
    docs: dict[str, str] = {}
    meta: dict[str, dict] = {}
    rejected: list[str] = []
    with zipfile.ZipFile(io.BytesIO(fetch(arc, cache))) as zf:
        for name in sorted(zf.namelist()):
            if not (name.startswith("allofplos/starter_corpus/") and name.endswith(".xml")):
                continue
            root = ET.fromstring(zf.read(name))
            front = root.find("front/article-meta")
            assert front is not None
            doi = next(e.text for e in front.findall("article-id") if e.get("pub-id-type") == "doi")
            if root.get("article-type") in NOTICE_TYPES:  # a few lines pointing at another article
                continue
            licence = article_licence(front.find("permissions"))
            if licence is None:
                rejected.append(doi)
                continue
            title_el = front.find("title-group/article-title")
            title = re.sub(r"\s+", " ", "".join(title_el.itertext())).strip() if title_el is not None else ""
            authors = []
            for c in front.findall("contrib-group/contrib"):
                if c.get("contrib-type") != "author":
                    continue
                sn, gn = c.findtext("name/surname"), c.findtext("name/given-names")
                collab = c.find("collab")
                name = " ".join(x for x in (gn, sn) if x)
                if not name and collab is not None:
                    name = re.sub(r"\s+", " ", "".join(collab.itertext())).strip()
                authors.append(name)
            year = front.findtext("pub-date/year")
            journal = root.findtext("front/journal-meta/journal-title-group/journal-title") or root.findtext(
                "front/journal-meta/journal-title"
            )
            out: list[str] = [title, "\n\n"]
            for ab in front.findall("abstract"):
                if ab.get("abstract-type") in {"toc", "teaser"}:
                    continue
                _jats_text(ab, out)
            body = root.find("body")
            if body is not None:
                _jats_text(body, out)
            text = normalise_prose("".join(out))
            docs[doi] = text
            meta[doi] = {
                "title": title,
                "authors": authors,
                "journal": journal,
                "year": year,
                "licence": licence,
            }
    return docs, [arc], meta, rejected


# ------------------------------------------------------------------------------------------------ split


def split(domain: str, docs: dict[str, str]) -> tuple[list[str], list[str]]:
    """Held-out and training document ids.

    Documents are ordered by ``sha256(f"{domain}:{doc_id}")`` (hex, ascending).  Walking that order, a
    document goes to the held-out set when its UTF-8 size is at most ``EVAL_DOC_MAX`` and adding it keeps the
    held-out total (sizes plus separators) at most ``EVAL_TARGET``; every other document is training text.
    Both lists keep the hash order.
    """
    order = sorted(docs, key=lambda d: hashlib.sha256(f"{domain}:{d}".encode()).hexdigest())
    held, train, total = [], [], 0
    for d in order:
        size = len(docs[d].encode("utf-8")) + len(SEP) + 2
        if size <= EVAL_DOC_MAX and total + size <= EVAL_TARGET:
            held.append(d)
            total += size
        else:
            train.append(d)
    return held, train


def join(docs: dict[str, str], ids: list[str]) -> str:
    parts = []
    for d in ids:
        text = docs[d].rstrip("\n")
        if SEP in text:
            raise ValueError(f"{d} contains the separator")
        parts.append(text)
    return ("\n" + SEP + "\n").join(parts) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=ROOT / "build" / "sources", help="downloaded archives")
    ap.add_argument("--out", type=Path, default=ROOT / "lampref" / "data" / "corpora")
    ap.add_argument("--train-dir", type=Path, default=ROOT / "build" / "train")
    args = ap.parse_args()
    t0 = time.perf_counter()
    cache = args.cache.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    args.train_dir.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer()

    prose, prose_src = prose_documents(cache)
    code, code_src = code_documents(cache)
    abstracts, abs_src, abs_meta, abs_rejected = abstracts_documents(cache)

    descriptions = {
        "prose": "Python 3.11.2 documentation: every HTML page under usr/share/doc/python3.11/html/ of the "
        "Debian package, except indexes, search, section tables of contents, the licence/copyright pages and "
        "Sphinx assets; text of the main body only, with code blocks (<pre>), API signatures, "
        "navigation and 'changed in version' notes removed; paragraphs separated by a blank line, "
        "whitespace inside a paragraph collapsed to single spaces, Unicode NFC.",
        "code": "Python 3.11.2 standard library: every .py file under usr/lib/python3.11/ of the two Debian "
        "packages, except test/tests/idle_test folders, generated _sysconfigdata* and config-* files and the "
        "machine-generated codec tables (encodings/*.py made by gencodec.py); "
        "kept verbatim (a final newline added where missing).",
        "abstracts": "PLOS research articles (JATS XML) in allofplos/starter_corpus/ of the allofplos 0.11.1 "
        "wheel, research articles whose licence is CC BY or CC0 only (corrections and retractions left "
        "out); per article: title, abstract(s) (author summary "
        "included, table-of-contents blurbs excluded), then the body (section titles and paragraphs) "
        "without figures, tables, display formulas (inline formulas kept as the text of their MathML), "
        "supplementary material, acknowledgements and references; "
        "paragraphs separated by a blank line, whitespace collapsed, Unicode NFC.",
    }
    provenance: dict = {
        "generated_by": "scripts/build_corpora.py",
        "format": f"UTF-8 text; documents separated by a line holding only {SEP}; no document contains it",
        "token_count": "len(lampref.gpt2.Tokenizer().encode_ordinary(document)) summed over documents; "
        "separators not counted",
        "split_rule": split.__doc__.strip().replace("\n    ", " ")
        + f" EVAL_TARGET = {EVAL_TARGET}, EVAL_DOC_MAX = {EVAL_DOC_MAX}.",
        "domains": {},
    }
    for domain, docs, srcs in (
        ("prose", prose, prose_src),
        ("code", code, code_src),
        ("abstracts", abstracts, abs_src),
    ):
        held, train = split(domain, docs)
        entry: dict = {
            "description": descriptions[domain],
            "sources": [
                {
                    "package": a.name,
                    "version": a.version,
                    "registry": "Debian bookworm" if a.client == "apt" else "PyPI",
                    "archive": a.filename,
                    "sha256": a.sha256,
                    "licence": a.licence,
                }
                for a in srcs
            ],
            "documents_total": len(docs),
        }
        for part, ids, path in (
            ("eval", held, args.out / f"{domain}.txt"),
            ("train", train, args.train_dir / f"{domain}.txt"),
        ):
            text = join(docs, ids)
            data = text.encode("utf-8")
            path.write_bytes(data)
            tokens = sum(len(tok.encode_ordinary(docs[d].rstrip("\n"))) for d in ids)
            entry[part] = {
                "file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
                "committed": part == "eval",
                "documents": len(ids),
                "bytes": len(data),
                "gpt2_tokens": tokens,
                "sha256": sha256_bytes(data),
                "document_ids": ids,
            }
            print(
                f"{domain:9s} {part:5s} docs={len(ids):5d} bytes={len(data):10d} tokens={tokens:9d}",
                file=sys.stderr,
            )
        if domain == "abstracts":
            entry["articles"] = {d: abs_meta[d] for d in held + train}
            entry["rejected_for_licence"] = abs_rejected
        provenance["domains"][domain] = entry
    (args.out / "PROVENANCE.json").write_text(json.dumps(provenance, indent=1, ensure_ascii=False) + "\n")
    print(f"done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
