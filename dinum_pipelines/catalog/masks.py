"""udata's `X-Fields` header (a flask-restx field mask such as `data{id,title},next_page`).

The team's clients send masks to cut responses down (`get_all_from_api_query(..., mask)`), and they
rely on the fields left out being absent, so the catalog applies them too.
"""

from __future__ import annotations

from typing import Any

from dinum_pipelines.catalog.errors import CatalogError

# field -> nested mask (None: the whole value); "*" keeps every field not listed.
Mask = dict[str, "Mask | None"]


def parse_mask(text: str) -> Mask:
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    mask, position = _parse_fields(text, 0)
    if position != len(text):
        raise CatalogError(f"Invalid X-Fields mask: unexpected {text[position]!r} at {position}.")
    return mask


def _parse_fields(text: str, position: int) -> tuple[Mask, int]:
    mask: Mask = {}
    name = ""
    while position < len(text):
        char = text[position]
        if char == "{":
            if not name.strip():
                raise CatalogError(f"Invalid X-Fields mask: '{{' without a field name at {position}.")
            nested, position = _parse_fields(text, position + 1)
            if position >= len(text) or text[position] != "}":
                raise CatalogError("Invalid X-Fields mask: missing '}'.")
            mask[name.strip()] = nested
            name = ""
        elif char == "}":
            break
        elif char == ",":
            if name.strip():
                mask[name.strip()] = None
            name = ""
        else:
            name += char
        position += 1
    if name.strip():
        mask[name.strip()] = None
    return mask, position


def apply_mask(value: Any, mask: Mask) -> Any:
    if isinstance(value, list):
        return [apply_mask(item, mask) for item in value]
    if not isinstance(value, dict):
        return value
    keep_all = "*" in mask
    result = {}
    for key, item in value.items():
        if key in mask:
            nested = mask[key]
            result[key] = item if nested is None else apply_mask(item, nested)
        elif keep_all:
            result[key] = item
    return result
