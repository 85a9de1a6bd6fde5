"""Parse rendered HTML the way a browser tokenizes it, to check what would actually run or show."""

from __future__ import annotations

from html.parser import HTMLParser

VOID = {"br", "hr", "img", "input", "meta", "link", "wbr"}
DANGEROUS_TAGS = {"script", "img", "iframe", "object", "embed", "svg", "style", "link", "meta", "base", "form"}


class Parsed(HTMLParser):
    """Start tags with their attributes, the visible text, and whether every tag was closed in order."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.feed(markup)
        self.close()
        if self.stack:
            self.problems.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)

    def attr_values(self, name: str) -> list[str]:
        return [attrs[name] or "" for _, attrs in self.tags if name in attrs]


def check_safe(markup: str) -> Parsed:
    """Well formed, no active content: no dangerous tag, no event-handler attribute, no script URL."""
    parsed = Parsed(markup)
    assert not parsed.problems, parsed.problems
    tags = {tag for tag, _ in parsed.tags}
    assert not tags & DANGEROUS_TAGS, tags & DANGEROUS_TAGS
    for tag, attrs in parsed.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, value)
            if name in {"href", "src", "action"}:
                assert (value or "").startswith(("http://", "https://")), (tag, name, value)
    return parsed
