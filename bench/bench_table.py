"""Benchmark: Textual's DataTable against VirtualTable on load, jump-to-bottom and replace."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from tui.ui.widgets.vtable import Column, ListSource, VirtualTable

SIZE = (120, 40)
LABELS = ("custom_id", "type", "error", "tokens")


@dataclass(frozen=True, slots=True)
class Timings:
    rows: int
    startup: float
    """App start to first paint of rows."""
    load: float
    """Handing the rows to the widget to their first paint (app already running)."""
    bottom: float
    replace: float


def row_values(index: int, generation: int = 0) -> tuple[str, str, str, str]:
    kind = "errored" if index % 7 == 0 else "succeeded"
    error = "overloaded_error" if kind == "errored" else ""
    return (f"req-{generation}-{index:07d}", kind, error, str((index * 37) % 5000))


class DataTableApp(App[None]):
    def __init__(self, rows: Sequence[tuple[str, ...]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        yield DataTable()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*LABELS)
        table.focus()
        if self.rows:
            table.add_rows(self.rows)


def vt_source(count: int, generation: int = 0) -> ListSource:
    keys = [f"req-{generation}-{index:07d}" for index in range(count)]

    def cells(index: int) -> tuple[Text, ...]:
        return tuple(Text(value) for value in row_values(index, generation))

    return ListSource(keys, cells)


class VirtualTableApp(App[None]):
    def __init__(self, source: ListSource | None) -> None:
        super().__init__()
        self.source = source

    def compose(self) -> ComposeResult:
        yield VirtualTable(
            [
                Column("custom_id", "custom_id", 20),
                Column("type", "type", 10),
                Column("error", "error", 18),
                Column("tokens", "tokens", 0, align="right"),
            ]
        )

    def on_mount(self) -> None:
        table = self.query_one(VirtualTable)
        table.focus()
        if self.source is not None:
            table.set_source(self.source)


async def timed(action: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await action()
    return time.perf_counter() - start


def paint(table: VirtualTable) -> None:
    """Render every line on screen, as a repaint would."""
    for y in range(table.size.height):
        table.render_line(y)


async def widget_only(count: int) -> dict[str, float]:
    """VirtualTable's own work with the event loop left out; and an idle pilot pause."""
    app = VirtualTableApp(vt_source(count))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one(VirtualTable)
        fresh = vt_source(count, 1)
        results = {"idle pilot.pause()": await timed(pilot.pause)}
        start = time.perf_counter()
        table.action_cursor_bottom()
        paint(table)
        results["G + repaint"] = time.perf_counter() - start
        start = time.perf_counter()
        table.action_cursor_up()
        paint(table)
        results["k + repaint (cached rows)"] = time.perf_counter() - start
        start = time.perf_counter()
        table.set_source(fresh)
        paint(table)
        results["set_source(new) + repaint"] = time.perf_counter() - start
        await pilot.pause()
    return results


async def bench_datatable(count: int) -> Timings:
    rows = [row_values(index) for index in range(count)]
    fresh = [row_values(index, 1) for index in range(count)]

    start = time.perf_counter()
    app = DataTableApp(rows)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        startup = time.perf_counter() - start
        table = app.query_one(DataTable)
        assert table.row_count == count

        async def bottom() -> None:
            await pilot.press("ctrl+end")
            await pilot.pause()

        async def replace() -> None:
            table.clear()
            table.add_rows(fresh)
            await pilot.pause()

        bottom_s = await timed(bottom)
        assert table.cursor_row == count - 1
        replace_s = await timed(replace)

    app = DataTableApp(())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one(DataTable)

        async def load() -> None:
            table.add_rows(rows)
            await pilot.pause()

        load_s = await timed(load)
    return Timings(count, startup, load_s, bottom_s, replace_s)


async def bench_virtual(count: int) -> Timings:
    source = vt_source(count)
    fresh = vt_source(count, 1)

    start = time.perf_counter()
    app = VirtualTableApp(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        startup = time.perf_counter() - start
        table = app.query_one(VirtualTable)
        assert "req-0-0000000" in table.render_line(1).text

        async def bottom() -> None:
            await pilot.press("G")
            await pilot.pause()

        async def replace() -> None:
            table.set_source(fresh)
            await pilot.pause()

        bottom_s = await timed(bottom)
        assert table.cursor_index == count - 1
        replace_s = await timed(replace)

    app = VirtualTableApp(None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one(VirtualTable)

        async def load() -> None:
            table.set_source(source)
            await pilot.pause()

        load_s = await timed(load)
    return Timings(count, startup, load_s, bottom_s, replace_s)


def scaled(timings: Timings, count: int) -> Timings:
    """Linear extrapolation of a smaller DataTable run to `count` rows."""
    factor = count / timings.rows
    return Timings(
        count,
        timings.startup * factor,
        timings.load * factor,
        timings.bottom,
        timings.replace * factor,
    )


def report(data_table: Timings, virtual: Timings, extrapolated: bool) -> None:
    note = " (extrapolated linearly)" if extrapolated else ""
    print(f"DataTable    {data_table.rows:>9,} rows{note}")
    print(f"VirtualTable {virtual.rows:>9,} rows")
    print("through the event loop (pilot, headless):")
    print(f"{'':24}{'DataTable':>12}{'VirtualTable':>14}{'ratio':>10}")
    for label, field in (
        ("start to first paint", "startup"),
        ("load to first paint", "load"),
        ("cursor to bottom", "bottom"),
        ("replace all rows", "replace"),
    ):
        dt_value = getattr(data_table, field)
        vt_value = getattr(virtual, field)
        ratio = dt_value / vt_value if vt_value else float("inf")
        print(f"{label:<24}{dt_value:>11.3f}s{vt_value:>13.4f}s{ratio:>9.1f}x")
    goal = data_table.load / 50
    verdict = "met" if virtual.load <= goal else "NOT met"
    print(f"target: VirtualTable load <= DataTable load / 50 ({goal:.3f}s): {verdict}")


async def main(rows: int, data_table_rows: int) -> None:
    print(f"VirtualTable, {rows:,} rows, synchronous work only:")
    for label, seconds in (await widget_only(rows)).items():
        print(f"  {label:<28}{seconds * 1000:>8.2f} ms")
    virtual = await bench_virtual(rows)
    measured = await bench_datatable(data_table_rows)
    extrapolated = data_table_rows != rows
    if extrapolated:
        print(
            f"DataTable measured at {measured.rows:,} rows: load {measured.load:.3f}s, "
            f"start {measured.startup:.3f}s, replace {measured.replace:.3f}s"
        )
    report(scaled(measured, rows) if extrapolated else measured, virtual, extrapolated)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--datatable-rows",
        type=int,
        default=None,
        help="rows for DataTable (default: --rows); its times are then scaled linearly to --rows",
    )
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.datatable_rows or args.rows))
