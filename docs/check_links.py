#!/usr/bin/env python3
"""Checks the relative links of README.md and the book (docs/src/**/*.md).

Every relative link and image must name a file or directory that exists (inside the
repository), and a `#anchor` must be the id of a heading of the Markdown file it points to, as
mdBook and GitHub make them (lower case; letters, digits, `-` and `_` kept; spaces become `-`;
everything else dropped; a repeated id gets `-1`, `-2`, ...). Every chapter in docs/src must be
listed in SUMMARY.md, and the book must not link to Markdown files outside docs/src (mdBook
would turn those links into `.html` files it never writes). Links with a scheme (https:,
mailto:) are not checked: the machines that run this have no internet.

Usage: check_links.py [REPO_ROOT]   (default: the repository this script is in)
Prints one line per broken link, `file:line: message`, and exits 1 if there is any.
Standard library only.
"""

import re
import sys
from pathlib import Path

# A fenced code block opens with three or more backticks or tildes (at most three spaces in).
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# An ATX heading, with an optional closing run of #, and mdBook's `{#custom-id}`.
HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
CUSTOM_ID = re.compile(r"[ \t]*\{#([^}\s]+)(?:[^}]*)\}$")
# Inline links and images: [text](target "title") / ![alt](<target>). Text may hold one level
# of nested brackets (`[![badge](img)](url)`).
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s)]*)(?:\s+[^)]*)?\)")
# Reference definitions: [label]: target
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
# A code span: a run of backticks, then anything up to the same run, within one paragraph.
CODE_SPAN = re.compile(r"(`+)((?:(?!\n[ \t]*\n).)+?)\1", re.S)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def slug(text):
    """The id mdBook (and GitHub) give a heading whose text is `text`."""
    out = []
    for ch in text:
        if ch.isalnum() or ch in "-_":
            out.append(ch.lower())
        elif ch.isspace():
            out.append("-")
    return "".join(out)


def heading_text(raw):
    """A heading's plain text: code spans unwrapped, links reduced to their text, tags dropped."""
    text = CODE_SPAN.sub(lambda m: m.group(2), raw)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    return text


def markdown_lines(path):
    """(line number, line) of the lines outside fenced code blocks, code spans blanked."""
    lines = path.read_text(encoding="utf-8").split("\n")
    fence = None
    prose = []
    for line in lines:
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            prose.append(None)
        elif fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and line.strip() == m.group(1):
                fence = None
            prose.append(None)
        else:
            prose.append(line)
    # Blank code spans (which may run over several lines of a paragraph), keeping every line
    # where it was, so that `[x](y)` in backticks is not taken for a link.
    text = "\n".join("" if line is None else line for line in prose)
    text = CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    return [(number, line)
            for number, (line, kept) in enumerate(zip(text.split("\n"), prose), 1)
            if kept is not None]


def links(path):
    """(line number, target) of every link and image in a Markdown file."""
    found = []
    for number, line in markdown_lines(path):
        for m in INLINE_LINK.finditer(line):
            found.append((number, m.group(1).strip("<>")))
        m = REF_DEF.match(line)
        if m:
            found.append((number, m.group(1).strip("<>")))
    return found


def markdown_files(root):
    files = [root / "README.md"]
    files += sorted((root / "docs" / "src").rglob("*.md"))
    return [f for f in files if f.is_file()]


def check(root):
    """Every broken link under `root`, as `file:line: message` strings."""
    root = Path(root).resolve()
    book = root / "docs" / "src"
    errors = []
    cache = {}
    for path in markdown_files(root):
        rel = path.relative_to(root)
        for number, target in links(path):
            where = f"{rel}:{number}"
            if not target:
                errors.append(f"{where}: empty link target")
                continue
            if SCHEME.match(target) or target.startswith("//"):
                continue
            file_part, _, anchor = target.partition("#")
            file_part = file_part.split("?", 1)[0]
            if file_part.startswith("/"):
                errors.append(f"{where}: `{target}` is absolute; link relative to the file")
                continue
            dest = (path.parent / file_part).resolve() if file_part else path
            try:
                dest.relative_to(root)
            except ValueError:
                errors.append(f"{where}: `{target}` points outside the repository")
                continue
            if not dest.exists():
                errors.append(f"{where}: `{target}`: no such file {dest.relative_to(root)}")
                continue
            in_book = path.is_relative_to(book)
            if in_book and dest.suffix == ".md" and not dest.is_relative_to(book):
                errors.append(f"{where}: `{target}`: the book links to a Markdown file outside"
                              " docs/src (mdBook would link to a page it never writes)")
                continue
            if anchor:
                if dest.is_dir() or dest.suffix != ".md":
                    errors.append(f"{where}: `{target}`: an anchor into a file that is not"
                                  " Markdown cannot be checked")
                elif anchor not in headings_of(dest, cache):
                    errors.append(f"{where}: `{target}`: {dest.relative_to(root)} has no heading"
                                  f" with the id `{anchor}`")
    summary = book / "SUMMARY.md"
    if book.is_dir():
        if not summary.is_file():
            errors.append("docs/src/SUMMARY.md: missing")
        else:
            listed = set()
            for _, target in links(summary):
                file_part = target.partition("#")[0]
                if file_part and not SCHEME.match(file_part):
                    listed.add((book / file_part).resolve())
            for chapter in sorted(book.rglob("*.md")):
                if chapter != summary and chapter.resolve() not in listed:
                    errors.append(f"{chapter.relative_to(root)}: not listed in"
                                  " docs/src/SUMMARY.md")
    return errors


def headings_of(path, cache):
    """Heading ids of `path`, from its lines as written (code spans in headings are text)."""
    if path not in cache:
        lines = path.read_text(encoding="utf-8").split("\n")
        outside = {n for n, _ in markdown_lines(path)}
        ids = set()
        seen = {}
        for number, line in enumerate(lines, 1):
            if number not in outside:
                continue
            m = HEADING.match(line)
            if not m:
                continue
            raw = re.sub(r"[ \t]+#+[ \t]*$", "", m.group(2) or "")
            custom = CUSTOM_ID.search(raw)
            if custom:
                ids.add(custom.group(1))
                continue
            base = slug(heading_text(raw))
            n = seen.get(base, 0)
            seen[base] = n + 1
            ids.add(base if n == 0 else f"{base}-{n}")
        cache[path] = ids
    return cache[path]


def main(argv):
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    errors = check(root)
    for error in errors:
        print(f"check_links: {error}", file=sys.stderr)
    files = markdown_files(Path(root).resolve())
    if errors:
        print(f"check_links: {len(errors)} broken link(s) in {len(files)} Markdown files",
              file=sys.stderr)
        return 1
    count = sum(len(links(f)) for f in files)
    print(f"check_links: {count} links in {len(files)} Markdown files ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
