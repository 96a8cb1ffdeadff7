"""A DVF-like CSV ("demandes de valeurs foncières") of any size, for the parse+clean benchmark.

DVF is the largest file the project handles and has every French convention cleaning deals
with: dd/mm/yyyy dates, amounts with a decimal comma and thousands spaces (ordinary and
no-break), codes with leading zeros or letters (01053, 2A004, 97411), accents, `’` and `œ`
(in Windows-1252, not in Latin-1), blank cells and CRLF line ends.

The file is deterministic (same arguments, same bytes) and built column by column with
`pyarrow.compute`, so a million rows take about 7 s. It is written CHUNK_ROWS rows at a time,
so memory does not grow with the file; `ChunkedDraws` serves each chunk the values that one
numpy call over the whole file would have drawn, so the bytes do not depend on the chunk size
(and are those the one-shot generator wrote before it was chunked). A small share of rows gets exactly one
defect that cleaning must report (an impossible date, an amount that is not a number, a
fraction of a room...). Their counts per column go to a JSON sidecar (`<file>.json`) next to the
file, which the benchmark compares with the cleaning report. Other oddities are valid and must
*not* be reported: ISO dates in the date column, whitespace-only cells (null), padded text.

    python bench/gen_dvf_like.py --rows 1000000 --out bench/out/dvf_1000000.csv
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# (name, declared type) in file order; the benchmark declares the same types in its DatasetSpec.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id_mutation", "string"),
    ("date_mutation", "date"),
    ("nature_mutation", "string"),
    ("valeur_fonciere", "number"),
    ("adresse_numero", "integer"),
    ("adresse_nom_voie", "string"),
    ("code_postal", "string"),
    ("code_commune", "string"),
    ("nom_commune", "string"),
    ("code_departement", "string"),
    ("type_local", "string"),
    ("surface_reelle_bati", "integer"),
    ("nombre_pieces_principales", "integer"),
    ("surface_terrain", "number"),
    ("longitude", "number"),
    ("latitude", "number"),
)

NATURES = (
    ("Vente", 0.86),
    ("Vente en l'état futur d'achèvement", 0.07),
    ("Echange", 0.03),
    ("Vente terrain à bâtir", 0.02),
    ("Adjudication", 0.015),
    ("Expropriation", 0.005),
)
LOCAL_TYPES = (
    ("Maison", 0.32),
    ("Appartement", 0.25),
    ("Dépendance", 0.12),
    ("Local industriel. commercial ou assimilé", 0.04),
    (None, 0.27),  # land only: no building, so no built surface nor rooms
)
VOIE_KINDS = ("RUE", "AV", "BD", "CHE", "IMP", "ALL", "PL", "RTE", "QUAI", "LD")
VOIE_NAMES = (
    "DE L’ÉGLISE", "DES ŒILLETS", "DU CŒUR VOLANT", "JEAN-BAPTISTE CLÉMENT", "DE LA RÉPUBLIQUE",
    "DU GÉNÉRAL DE GAULLE", "DES ÉCOLES", "SAINT-ÉLOI", "D’ESTIENNE D’ORVES", "DE LA GARE",
    "DES ÂNES", "DU MARÉCHAL FOCH", "PASTEUR", "DES PÊCHEURS", "DE L’ŒUVRE", "NOTRE-DAME",
    "DU 8 MAI 1945", "VICTOR HUGO", "DES CHÂTAIGNIERS", "DE LA FONTAINE",
)  # fmt: skip
COMMUNE_STEMS = (
    "Saint-Étienne", "Bourg", "L’Haÿ", "Château", "Montréal", "Sainte-Œnone", "Évreux", "Fontaine",
    "Béthune", "Villeneuve", "Pré", "Noël", "Aÿ", "Île", "Crèvecœur",
)  # fmt: skip
COMMUNE_SUFFIXES = ("", "-les-Roses", "-sur-Mer", "-en-Bresse", "-le-Château", "-d’Azur", "-la-Forêt", "-de-Bigorre")
DEPARTEMENTS = (
    *(f"{n:02d}" for n in range(1, 96) if n != 20), "2A", "2B", "971", "972", "973", "974", "976",
)  # fmt: skip
COMMUNES_PER_DEPARTEMENT = 20

DEFAULT_SEED = 2024
CHUNK_ROWS = 200_000  # about 250 MB of working memory
DEFAULT_INVALID_RATE = 0.002
FIRST_DAY = np.datetime64("2019-01-01")
LAST_DAY = np.datetime64("2024-12-31")


# --- numpy's draws over the whole file, served a chunk at a time ---

_DOUBLE_SCALE = 1.0 / 9007199254740992.0  # numpy's next_double: the top 53 bits of a word
_LOOKAHEAD_WORDS = 1 << 16


def _copy(bit_generator: np.random.PCG64) -> np.random.PCG64:
    copy = np.random.PCG64()
    copy.state = bit_generator.state
    return copy


def _advanced(start: np.random.PCG64, words: int, half: int | None) -> np.random.PCG64:
    """`start` moved on by `words` 64-bit words, with `half` as its buffered 32-bit half (numpy's
    `has_uint32`, which `advance` clears) or none."""
    moved = _copy(start).advance(words)
    state = moved.state
    state["has_uint32"], state["uinteger"] = (0, 0) if half is None else (1, half)
    moved.state = state
    return moved


def _pending_half(bit_generator: np.random.PCG64) -> int | None:
    state = bit_generator.state
    return state["uinteger"] if state["has_uint32"] else None


class _Uniform:
    """`Generator.random(total)`: one 64-bit word per value, so chunks are plain slices. The
    32-bit half an `integers` call left buffered stays there for the next one."""

    def __init__(self, bit_generator: np.random.PCG64) -> None:
        self.bit_generator = bit_generator

    def take(self, rows: int) -> np.ndarray:
        return (self.bit_generator.random_raw(rows) >> np.uint64(11)) * _DOUBLE_SCALE

    def end_state(self, start: np.random.PCG64, total: int) -> np.random.PCG64:
        return _advanced(start, total, _pending_half(start))


class _Bounded:
    """`Generator.integers(low, high, total)` for a range under 2**32, as numpy draws it: Lemire's
    method on 32-bit halves of words (low half first, a rejected half replaced by the next one),
    the spare half of a word kept by the bit generator for the next `integers` call.
    Vectorized, chunk after chunk, with the same values."""

    def __init__(self, bit_generator: np.random.PCG64, low: int, high: int) -> None:
        if not 0 < high - low <= 1 << 32:
            raise ValueError(f"integers({low}, {high}): only ranges of 1 to 2**32 values are emulated")
        self.bit_generator, self.low = bit_generator, low
        self.span = np.uint64(high - low)
        self.threshold = np.uint64((1 << 32) % (high - low))
        pending = _pending_half(bit_generator)
        self.halves = np.array([] if pending is None else [pending], np.uint64)  # drawn, not yet used
        self.had_pending = pending is not None
        self.used_halves = 0

    def _values(self, halves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scaled = halves * self.span
        return scaled >> np.uint64(32), (scaled & np.uint64(0xFFFFFFFF)) >= self.threshold

    def take(self, rows: int) -> np.ndarray:
        if self.span == 1:
            return np.full(rows, self.low, np.int64)
        parts, missing = [], rows
        while missing:
            if len(self.halves) < missing:
                words = self.bit_generator.random_raw(max(missing, _LOOKAHEAD_WORDS) // 2 + 1)
                halves = np.stack([words & np.uint64(0xFFFFFFFF), words >> np.uint64(32)], axis=1).ravel()
                self.halves = np.concatenate([self.halves, halves])
            values, accepted = self._values(self.halves)
            kept = np.flatnonzero(accepted)[:missing]
            end = int(kept[-1]) + 1 if len(kept) == missing else len(self.halves)
            parts.append(values[kept])
            missing -= len(kept)
            self.halves, self.used_halves = self.halves[end:], self.used_halves + end
        return np.concatenate(parts).astype(np.int64) + self.low

    def end_state(self, start: np.random.PCG64, total: int) -> np.random.PCG64:
        """Where the whole call leaves the generator: after the words it used, with the spare
        half of the last one buffered."""
        if self.span == 1:
            return _copy(start)
        counter = _Bounded(_copy(start), int(self.low), int(self.low) + int(self.span))
        for first in range(0, total, _LOOKAHEAD_WORDS * 8):
            counter.take(min(_LOOKAHEAD_WORDS * 8, total - first))
        from_words = counter.used_halves - counter.had_pending
        spare = int(counter.halves[0]) if from_words % 2 else None
        return _advanced(start, (from_words + 1) // 2, spare)


class _Lognormal:
    """`Generator.lognormal(mean, sigma, total)`: the ziggurat draws words one value after the
    other, with no buffer, so drawing a chunk at a time gives the same values."""

    def __init__(self, bit_generator: np.random.PCG64, mean: float, sigma: float) -> None:
        self.generator, self.mean, self.sigma = np.random.Generator(bit_generator), mean, sigma

    def take(self, rows: int) -> np.ndarray:
        return self.generator.lognormal(self.mean, self.sigma, rows)

    def end_state(self, start: np.random.PCG64, total: int) -> np.random.PCG64:
        bit_generator = _copy(start)
        generator = np.random.Generator(bit_generator)
        for first in range(0, total, _LOOKAHEAD_WORDS * 8):
            generator.lognormal(self.mean, self.sigma, min(_LOOKAHEAD_WORDS * 8, total - first))
        return bit_generator


class ChunkedDraws:
    """The draws of `np.random.default_rng(seed)` over a file of `total_rows` rows, served a chunk
    at a time: each call of the file's code (one value per row) gets, chunk after chunk, the values
    one call over all the rows would have given, so the file does not depend on the chunk size.

    Calls are told apart by their order within a chunk, the same in every chunk. On the first
    chunk, each new call starts where the previous call over the whole file would have ended;
    `whole_file_draws()` gives a plain Generator there for a draw made once (a fixed table)."""

    def __init__(self, seed: int, total_rows: int) -> None:
        self.total_rows = total_rows
        self._next_start = np.random.default_rng(seed).bit_generator
        self._calls: list[_Uniform | _Bounded | _Lognormal] = []
        self._position = 0

    def start_chunk(self) -> None:
        self._position = 0

    def _call(self, make: Any) -> Any:
        if self._position == len(self._calls):
            start = self._next_start
            call = make(_copy(start))
            self._next_start = call.end_state(start, self.total_rows)
            self._calls.append(call)
        call = self._calls[self._position]
        self._position += 1
        return call

    def integers(self, low: int, high: int, size: int) -> np.ndarray:
        return self._call(lambda bit_generator: _Bounded(bit_generator, int(low), int(high))).take(size)

    def random(self, size: int) -> np.ndarray:
        return self._call(_Uniform).take(size)

    def lognormal(self, mean: float, sigma: float, size: int) -> np.ndarray:
        return self._call(lambda bit_generator: _Lognormal(bit_generator, mean, sigma)).take(size)

    def choice(self, options: int, size: int, p: np.ndarray) -> np.ndarray:
        """`Generator.choice(options, size, p=p)`: numpy draws uniforms and looks them up in the CDF."""
        cdf = p.cumsum()
        cdf /= cdf[-1]
        return cdf.searchsorted(self.random(size), side="right").astype(np.int64)

    def whole_file_draws(self) -> np.random.Generator:
        """A Generator where the next call would start; what it draws moves the next calls on."""
        generator = np.random.Generator(self._next_start)
        return generator


@dataclass(frozen=True)
class Defect:
    """A kind of bad cell: which column, and the text that replaces the value."""

    column: str
    values: tuple[str, ...]
    reported: bool  # True when cleaning must count it as a failure


DEFECTS = (
    Defect("date_mutation", ("31/02/2023", "30/02/2024", "00/01/2022", "15/13/2021"), reported=True),
    Defect("valeur_fonciere", ("NC", "#VALEUR!", "12,5,0", "1 2O4,00"), reported=True),
    Defect("nombre_pieces_principales", ("3,5", "deux"), reported=True),
    Defect("surface_reelle_bati", ("NC", "120m2"), reported=True),
    Defect("longitude", ("2,35,1", "E2,35"), reported=True),
    # Valid, and so not reported: another date format, a whitespace-only cell (a blank), padding.
    Defect("date_mutation", ("2023-06-15", "2022-01-31"), reported=False),
    Defect("surface_terrain", (" ", "   "), reported=False),
    Defect("nom_commune", (" Bourg-en-Bresse ", "  Évreux"), reported=False),
)


def _text(values: np.ndarray | pa.Array) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _padded(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(_text(values), width=width, padding="0")


def _choice(rng: ChunkedDraws | np.random.Generator, weighted: tuple[tuple[str | None, float], ...], rows: int) -> pa.Array:
    labels = pa.array([label for label, _ in weighted], pa.string())
    weights = np.array([weight for _, weight in weighted])
    return labels.take(pa.array(rng.choice(len(weighted), size=rows, p=weights / weights.sum())))


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _grouped(whole: np.ndarray, separators: pa.Array) -> pa.Array:
    """`1234567` -> `1 234 567`, with each row's own separator (space or no-break space)."""
    millions, thousands, units = whole // 1_000_000, (whole // 1000) % 1000, whole % 1000
    return pc.if_else(
        pa.array(millions > 0),
        _join(_text(millions), separators, _padded(thousands, 3), separators, _padded(units, 3)),
        pc.if_else(pa.array(thousands > 0), _join(_text(thousands), separators, _padded(units, 3)), _text(units)),
    )


def _decimal_comma(scaled: np.ndarray, decimals: int) -> pa.Array:
    """Fixed-point integers (value × 10^decimals) as French decimals: `-1,553621`."""
    whole, fraction = np.divmod(np.abs(scaled), 10**decimals)
    sign = pc.if_else(pa.array(scaled < 0), "-", "")
    return _join(sign, _text(whole), ",", _padded(fraction, decimals))


def _communes(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A fixed table of communes: INSEE code, postcode, department and name."""
    departements = np.repeat(np.array(DEPARTEMENTS), COMMUNES_PER_DEPARTEMENT)
    numbers = np.tile(np.arange(1, COMMUNES_PER_DEPARTEMENT + 1) * 7, len(DEPARTEMENTS))
    overseas = np.char.str_len(departements) == 3
    insee = np.where(
        overseas,
        np.char.add(departements, np.char.zfill((numbers % 100).astype(str), 2)),
        np.char.add(departements, np.char.zfill(numbers.astype(str), 3)),
    )
    postal_prefix = np.where(np.isin(departements, ("2A", "2B")), "20", departements)
    postal = np.char.add(postal_prefix, np.char.zfill((numbers * 10 % 1000).astype(str), 5 - 2))
    postal = np.where(overseas, np.char.add(departements, np.char.zfill((numbers % 100).astype(str), 2)), postal)
    names = np.char.add(
        np.array(COMMUNE_STEMS)[rng.integers(0, len(COMMUNE_STEMS), len(insee))],
        np.array(COMMUNE_SUFFIXES)[rng.integers(0, len(COMMUNE_SUFFIXES), len(insee))],
    )
    return {"code_commune": insee, "code_postal": postal, "code_departement": departements, "nom_commune": names}


def build_columns(rows: int, seed: int) -> dict[str, pa.Array]:
    """Every column of a whole file as text (null = blank cell), before defects."""
    return build_chunk(ChunkedDraws(seed, rows), 0, rows, {})


def build_chunk(rng: ChunkedDraws, first_row: int, rows: int, tables: dict[str, dict[str, np.ndarray]]) -> dict[str, pa.Array]:
    """The columns of rows first_row .. first_row + rows; `tables` keeps the commune table the
    first chunk draws for the next ones."""
    days = FIRST_DAY + rng.integers(0, (LAST_DAY - FIRST_DAY).astype(int) + 1, rows)
    cents = np.round(rng.lognormal(12.0, 1.1, rows) * 100).astype(np.int64)
    separators = pa.array(np.where(rng.random(rows) < 0.2, "\u00a0", " "))
    grouped = rng.random(rows) < 0.5
    amount_whole = pc.if_else(pa.array(grouped), _grouped(cents // 100, separators), _text(cents // 100))
    local_type = _choice(rng, LOCAL_TYPES, rows)
    built = pc.is_valid(local_type).to_numpy(zero_copy_only=False)
    if "communes" not in tables:
        tables["communes"] = _communes(rng.whole_file_draws())
    communes = tables["communes"]
    commune = rng.integers(0, len(communes["code_commune"]), rows)

    def blank_where(values: pa.Array, blank: np.ndarray) -> pa.Array:
        return pc.if_else(pa.array(blank), pa.nulls(rows, pa.string()), values)

    voie = _join(
        pa.array(VOIE_KINDS).take(pa.array(rng.integers(0, len(VOIE_KINDS), rows))),
        " ",
        pa.array(VOIE_NAMES).take(pa.array(rng.integers(0, len(VOIE_NAMES), rows))),
    )
    return {
        "id_mutation": _join(_text(days.astype("datetime64[Y]").astype(int) + 1970), "-", _text(np.arange(first_row + 1, first_row + rows + 1))),
        "date_mutation": pc.strftime(pa.array(days), format="%d/%m/%Y"),
        "nature_mutation": _choice(rng, NATURES, rows),
        "valeur_fonciere": blank_where(_join(amount_whole, ",", _padded(cents % 100, 2)), rng.random(rows) < 0.01),
        "adresse_numero": blank_where(_text(rng.integers(1, 200, rows)), rng.random(rows) < 0.05),
        "adresse_nom_voie": voie,
        **{name: _text(values[commune]) for name, values in communes.items()},
        "type_local": local_type,
        "surface_reelle_bati": blank_where(_text(rng.integers(9, 400, rows)), ~built),
        "nombre_pieces_principales": blank_where(_text(rng.integers(0, 12, rows)), ~built),
        "surface_terrain": blank_where(_text(rng.integers(20, 50_000, rows)), rng.random(rows) < 0.4),
        "longitude": blank_where(_decimal_comma(rng.integers(-5_000_000, 8_000_000, rows), 6), rng.random(rows) < 0.02),
        "latitude": blank_where(_decimal_comma(rng.integers(42_000_000, 51_000_000, rows), 6), rng.random(rows) < 0.02),
    }


def inject_defects(
    columns: dict[str, pa.Array], rows: int, invalid_rate: float, rng: ChunkedDraws
) -> tuple[dict[str, pa.Array], dict[str, int], dict[str, int]]:
    """Give `invalid_rate` of the chunk's rows one defect each (draws from `rng`, seeded with the
    file's seed + 1); returns the columns and the counts per column."""
    defective = rng.random(rows) < invalid_rate
    kind = np.where(defective, rng.integers(0, len(DEFECTS), rows), -1)
    # A defect only counts where the cell held a value: a blank cell stays blank.
    reported: dict[str, int] = {}
    valid_oddities: dict[str, int] = {}
    for index, defect in enumerate(DEFECTS):
        hit = kind == index
        if defect.reported:
            hit &= pc.is_valid(columns[defect.column]).to_numpy(zero_copy_only=False)
        values = pa.array(defect.values).take(pa.array(rng.integers(0, len(defect.values), rows)))
        columns[defect.column] = pc.if_else(pa.array(hit), values, columns[defect.column])
        tally = reported if defect.reported else valid_oddities
        tally[defect.column] = tally.get(defect.column, 0) + int(hit.sum())
    return columns, reported, valid_oddities


def csv_header(encoding: str = "cp1252") -> bytes:
    return (";".join(name for name, _ in COLUMNS) + "\r\n").encode(encoding)


def csv_bytes(columns: dict[str, pa.Array], encoding: str = "cp1252") -> bytes:
    """The chunk's lines, `;`-separated, each ended by CRLF; no generated value needs quoting."""
    lines = pc.binary_join_element_wise(
        *(columns[name] for name, _ in COLUMNS), ";", null_handling="replace", null_replacement=""
    )
    body = pc.binary_join_element_wise(lines, "", "\r\n")
    offsets = np.frombuffer(body.buffers()[1], dtype=np.int32, count=len(body) + 1, offset=body.offset * 4)
    data = body.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]
    return data.decode("utf-8").encode(encoding)


def generate(
    path: Path, rows: int = 1_000_000, seed: int = DEFAULT_SEED, invalid_rate: float = DEFAULT_INVALID_RATE,
    chunk_rows: int = CHUNK_ROWS,
) -> dict:
    """Write the CSV, a chunk at a time, and its sidecar; returns the sidecar's content."""
    column_draws, defect_draws = ChunkedDraws(seed, rows), ChunkedDraws(seed + 1, rows)
    tables: dict[str, dict[str, np.ndarray]] = {}
    reported: dict[str, int] = {}
    valid_oddities: dict[str, int] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        out.write(csv_header())
        for first_row in range(0, rows, chunk_rows):
            size = min(chunk_rows, rows - first_row)
            column_draws.start_chunk()
            defect_draws.start_chunk()
            columns = build_chunk(column_draws, first_row, size, tables)
            columns, chunk_reported, chunk_oddities = inject_defects(columns, size, invalid_rate, defect_draws)
            out.write(csv_bytes(columns))
            for total, counts in ((reported, chunk_reported), (valid_oddities, chunk_oddities)):
                for name, count in counts.items():
                    total[name] = total.get(name, 0) + count
    record = {
        "rows": rows,
        "seed": seed,
        "invalid_rate": invalid_rate,
        "encoding": "cp1252",
        "delimiter": ";",
        "columns": dict(COLUMNS),
        # What the cleaning report must count, column by column (absent column: zero).
        "expected_issues": {name: count for name, count in reported.items() if count},
        # Valid oddities cleaning must accept without reporting them.
        "valid_oddities": valid_oddities,
        "bytes": path.stat().st_size,
    }
    sidecar_path(path).write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    return record


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--invalid-rate", type=float, default=DEFAULT_INVALID_RATE, help="share of rows given one defect")
    parser.add_argument("--out", type=Path, default=None, help="default: bench/out/dvf_<rows>.csv")
    args = parser.parse_args(argv)
    out = args.out or Path(__file__).resolve().parent / "out" / f"dvf_{args.rows}.csv"
    record = generate(out, args.rows, args.seed, args.invalid_rate)
    print(f"{out}: {record['rows']:,} rows, {record['bytes'] / 1e6:.1f} MB")
    print(f"cells cleaning must report: {record['expected_issues']}")
    print(f"valid oddities it must accept: {record['valid_oddities']}")


if __name__ == "__main__":
    main()


# --- The quality benchmark's file: the same columns with real codes, three more, and one defect per rule ---

QUALITY_EXTRA_COLUMNS: tuple[tuple[str, str], ...] = (("siret", "string"), ("email", "string"), ("telephone", "string"))
FUNCTIONAL_MAILBOXES = ("contact", "accueil", "mairie", "secretariat", "info")
# rule id (as bench_quality.py names its rules) -> (column, replacement values); every value breaks that rule only.
QUALITY_DEFECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "id_mutation_unique": ("id_mutation", ()),  # filled with the previous row's id
    "date_mutation_range": ("date_mutation", ("15/03/2031", "01/01/2018")),
    "nature_mutation_enum": ("nature_mutation", ("Donation", "Vente aux enchères")),
    "valeur_fonciere_range": ("valeur_fonciere", ("-1 000,00", "-5,00")),
    "nombre_pieces_range": ("nombre_pieces_principales", ("99", "60")),
    "code_postal_format": ("code_postal", ("00000", "99999")),
    "code_commune_format": ("code_commune", ("2C004", "75000")),
    "code_departement_format": ("code_departement", ("20", "99")),
    "siret_format": ("siret", ()),  # a valid SIRET with its last digit changed
    "email_format": ("email", ("contact@mairie", "accueil.mairie.fr")),
    "telephone_format": ("telephone", ("12 34", "00 12 34 56 78")),
    "coordinates_in_france": ("longitude", ()),  # longitude and latitude swapped
    "email_personal_data": ("email", ("jean.dupont@gmail.com", "m.martin@orange.fr")),
}


def _luhn_siret(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Valid SIRETs: a Luhn-valid SIREN followed by a NIC that makes the whole Luhn-valid."""

    def complete(body: np.ndarray) -> np.ndarray:  # body digits (rows, n) -> check digit
        n = body.shape[1] + 1
        doubled = (np.arange(n)[::-1] % 2 == 1)[:-1]
        values = body.astype(np.int64)
        values[:, doubled] *= 2
        values[values > 9] -= 9
        return (10 - values.sum(axis=1) % 10) % 10

    siren = rng.integers(0, 10, (rows, 8))
    siren = np.hstack([siren, complete(siren)[:, None]])
    nic = rng.integers(0, 10, (rows, 4))
    body = np.hstack([siren, nic])
    digits = np.hstack([body, complete(body)[:, None]])
    return digits


def _digits_text(digits: np.ndarray) -> pa.Array:
    return pa.array((digits.astype(np.uint8) + ord("0")).view(f"S{digits.shape[1]}").ravel().astype(str))


def generate_quality(path: Path, rows: int = 1_000_000, seed: int = DEFAULT_SEED, invalid_rate: float = DEFAULT_INVALID_RATE) -> dict:
    """The DVF-like file for the quality benchmark, and its sidecar: how many rows break each rule.

    Unlike `generate`, every cell parses (the cleaning defects are left out), the codes are real
    (drawn from frformat's COG 2024 communes and La Poste's postal codes), and `siret`, `email`
    (functional addresses) and `telephone` (landlines) are added. Each defective row gets exactly
    one defect from QUALITY_DEFECTS, which breaks exactly one rule."""
    from frformat import CodeCommuneInsee, CodePostal

    columns = build_columns(rows, seed)
    rng = np.random.default_rng(seed + 2)
    communes = np.array(sorted(CodeCommuneInsee("2024").get_valid_values_set()))
    postcodes = np.array(sorted(CodePostal().get_valid_values_set()))
    commune = communes[rng.integers(0, len(communes), rows)]
    columns["code_commune"] = pa.array(commune)
    columns["code_departement"] = pa.array(np.where(np.char.startswith(commune, "97"), np.char.ljust(commune, 3).astype("U3"), commune.astype("U2")))
    columns["code_postal"] = pa.array(postcodes[rng.integers(0, len(postcodes), rows)])
    siret = _luhn_siret(rng, rows)
    columns["siret"] = _digits_text(siret)
    mailbox = pa.array(FUNCTIONAL_MAILBOXES).take(pa.array(rng.integers(0, len(FUNCTIONAL_MAILBOXES), rows)))
    columns["email"] = _join(mailbox, "@mairie-", pc.utf8_lower(pc.replace_substring_regex(columns["code_commune"], "[^0-9A-Za-z]", "")), ".fr")
    columns["telephone"] = _join("0", _text(rng.integers(1, 6, rows)), " ", _padded(rng.integers(0, 100, rows), 2), " ",
                                 _padded(rng.integers(0, 100, rows), 2), " ", _padded(rng.integers(0, 100, rows), 2), " ",
                                 _padded(rng.integers(0, 100, rows), 2))
    defective = rng.random(rows) < invalid_rate
    defective[0] = False  # the first row has no previous id to repeat
    kinds = list(QUALITY_DEFECTS)
    kind = np.where(defective, rng.integers(0, len(kinds), rows), -1)
    counts: dict[str, int] = {}
    for index, rule in enumerate(kinds):
        hit = kind == index
        column, values = QUALITY_DEFECTS[rule]
        # A defect only counts where the cells held values (a blank stays blank).
        for needed in ("longitude", "latitude") if rule == "coordinates_in_france" else (column,):
            hit &= pc.is_valid(columns[needed]).to_numpy(zero_copy_only=False)
        if rule == "id_mutation_unique":
            hit &= ~np.roll(hit, 1)  # the repeated id must be the previous row's own
        mask = pa.array(hit)
        if rule == "id_mutation_unique":
            previous = pa.concat_arrays([columns[column].slice(0, 1), columns[column].slice(0, rows - 1)])
            columns[column] = pc.if_else(mask, previous, columns[column])
            hit = hit | np.roll(hit, -1)  # both rows of a pair break uniqueness
        elif rule == "siret_format":
            broken = siret.copy()
            broken[:, -1] = (broken[:, -1] + 1) % 10
            columns[column] = pc.if_else(mask, _digits_text(broken), columns[column])
        elif rule == "coordinates_in_france":
            longitude, latitude = columns["longitude"], columns["latitude"]
            columns["longitude"], columns["latitude"] = pc.if_else(mask, latitude, longitude), pc.if_else(mask, longitude, latitude)
        else:
            replacement = pa.array(values).take(pa.array(rng.integers(0, len(values), rows)))
            columns[column] = pc.if_else(mask, replacement, columns[column])
        counts[rule] = int(hit.sum())
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [name for name, _ in (*COLUMNS, *QUALITY_EXTRA_COLUMNS)]
    lines = pc.binary_join_element_wise(*(columns[name] for name in names), ";", null_handling="replace", null_replacement="")
    path.write_bytes(("\n".join([";".join(names), *lines.to_pylist()]) + "\n").encode("utf-8"))
    record = {
        "rows": rows,
        "seed": seed,
        "invalid_rate": invalid_rate,
        "encoding": "utf-8",
        "delimiter": ";",
        "columns": dict((*COLUMNS, *QUALITY_EXTRA_COLUMNS)),
        "expected_failures": counts,
        "bytes": path.stat().st_size,
    }
    sidecar_path(path).write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    return record
