#!/usr/bin/env python3
"""inventory.py — a toy inventory tracker, written for the tokenizer peer corpus.

Exercises Python token shapes: decorators, f-strings, dunder names, type hints,
comprehensions, walrus, **kwargs, slicing, and docstrings with 'quotes' and "quotes".
"""
from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections import Counter, defaultdict
from typing import Iterable, Iterator, Optional

SKU_RE = re.compile(r"^[A-Z]{3}-\d{4}(?:-[a-z0-9]+)?$")
_DEFAULT_PRICE_CENTS: int = 1_000


class InventoryError(Exception):
    """Raised when the inventory is asked to do something impossible."""


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    sku: str
    name: str
    price_cents: int = _DEFAULT_PRICE_CENTS
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not SKU_RE.match(self.sku):
            raise InventoryError(f"bad SKU {self.sku!r}")
        if self.price_cents < 0:
            raise InventoryError(f"negative price for {self.sku}: {self.price_cents}")

    @property
    def price(self) -> str:
        return f"{self.price_cents // 100}.{self.price_cents % 100:02d}"


class Inventory:
    def __init__(self, items: Iterable[Item] = ()) -> None:
        self._items: dict[str, Item] = {}
        self._stock: Counter[str] = Counter()
        self._by_tag: defaultdict[str, set[str]] = defaultdict(set)
        for it in items:
            self.add(it)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, sku: object) -> bool:
        return sku in self._items

    def __iter__(self) -> Iterator[Item]:
        yield from sorted(self._items.values(), key=lambda i: (i.name.lower(), i.sku))

    def __repr__(self) -> str:
        return f"Inventory({len(self)} items, {sum(self._stock.values())} units)"

    def add(self, item: Item, count: int = 0) -> None:
        if item.sku in self._items:
            raise InventoryError(f"duplicate SKU {item.sku}")
        self._items[item.sku] = item
        self._stock[item.sku] += count
        for tag in item.tags:
            self._by_tag[tag].add(item.sku)

    def restock(self, sku: str, count: int) -> int:
        if sku not in self:
            raise KeyError(sku)
        self._stock[sku] += count
        return self._stock[sku]

    def sell(self, sku: str, count: int = 1) -> int:
        if (have := self._stock.get(sku, 0)) < count:
            raise InventoryError(f"only {have} of {sku} left, wanted {count}")
        self._stock[sku] -= count
        return self._items[sku].price_cents * count

    def tagged(self, *tags: str, match_all: bool = False) -> list[Item]:
        sets = [self._by_tag.get(t, set()) for t in tags]
        if not sets:
            return []
        skus = set.intersection(*sets) if match_all else set.union(*sets)
        return [self._items[s] for s in sorted(skus)]

    def low_stock(self, threshold: int = 3) -> dict[str, int]:
        return {s: n for s, n in self._stock.items() if n <= threshold}

    def to_json(self, **kwargs) -> str:
        payload = {
            "items": [dataclasses.asdict(i) for i in self],
            "stock": dict(sorted(self._stock.items())),
        }
        return json.dumps(payload, **kwargs)


def parse_line(line: str) -> Optional[tuple[str, str, int]]:
    # Format: SKU<TAB>name<TAB>price   (comments start with '#')
    line = line.split("#", 1)[0].rstrip()
    if not line:
        return None
    try:
        sku, name, price = line.split("\t")
    except ValueError:
        print(f"warning: can't parse {line!r}", file=sys.stderr)
        return None
    return sku.strip(), name.strip(), int(round(float(price) * 100))


def main(argv: list[str]) -> int:
    inv = Inventory()
    text = """ABC-0001\tWidget\t2.50
ABC-0002\tGadget\t10.00   # the big one
XYZ-1234-blue\tBlue thing\t0.99
bad line here
"""
    for raw in text.splitlines():
        if (parsed := parse_line(raw)) is not None:
            sku, name, cents = parsed
            inv.add(Item(sku, name, cents, tags=("demo",) if "ABC" in sku else ()), count=2)
    inv.restock("ABC-0001", 5)
    total = inv.sell("ABC-0001", 3) + inv.sell("XYZ-1234-blue")
    print(repr(inv), f"total={total / 100:.2f}", inv.low_stock(), sep=" | ")
    print(inv.to_json(indent=2, sort_keys=True)[:80] + "...")
    matrix = [[r * c for c in range(1, 4)] for r in range(1, 4)]
    print(matrix[::-1], matrix[0][1:], [x for row in matrix for x in row if x % 2 == 0])
    return 0 if len(inv) == 3 and 'ABC-0002' in inv else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
