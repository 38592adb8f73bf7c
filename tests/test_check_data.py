"""`nnflow check` reads the data files' headers; every data read opens regular files only, bounded.

The check's column messages are the training path's own (a parity test runs both). Files that
are not regular files (a FIFO, a device, a folder, a link loop) fail at once, in `check` as in
`train`: the FIFO tests run the command in a thread and give it seconds, with no writer attached.
"""

from __future__ import annotations

import bz2
import datetime
import gzip
import io
import json
import lzma
import os
import threading
import zipfile
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CONFIGS, DATA, ROOT
from nnflow import headers
from nnflow.cli import cli
from nnflow.errors import DataError
from nnflow.spec import load_spec

IRIS_HEAD = "".join((DATA / "iris.csv").read_text().splitlines(keepends=True)[:13])
COLUMNS = ("sepal_length", "sepal_width", "petal_length", "petal_width", "species")
SCHEMAS = ROOT / "docs" / "json"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def experiment(folder: Path, train: str = "train.csv", target: str = "species", extra: str = "") -> Path:
    path = folder / "experiment.yaml"
    path.write_text(
        f"data:\n  train: {train}\n  target: {target}\n{extra}"
        "layers: [{Dense: {units: 3, activation: softmax}}]\n"
        "compile: {optimizer: adam, loss: sparse_categorical_crossentropy}\nfit: {epochs: 1}\n"
    )
    return path


def finishes(function, seconds: float = 10):
    """Run `function` in a thread; fail if it is still blocked after `seconds` (a FIFO with no writer)."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    return outcome


# ---------------------------------------------------------------------------
# The shipped configs and the command line


@pytest.mark.parametrize("config", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_example_config_passes_check_with_its_data(config):
    result = run("check", config)
    assert result.exit_code == 0, result.output
    if load_spec(config).data is not None:
        assert "; data: " in result.output and "feature column" in result.output


def test_check_reads_the_headers_and_says_so():
    result = run("check", CONFIGS / "iris.yaml")
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("2 gate(s); data: 4 feature columns, target 'species'")


def test_no_data_skips_a_missing_file(tmp_path):
    config = experiment(tmp_path, train="not-yet.csv")
    assert run("check", config).exit_code == 3
    result = run("check", config, "--no-data")
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("; data not read (--no-data)")


def test_no_data_is_in_the_help():
    result = run("check", "--help")
    assert (
        result.exit_code == 0
        and "--no-data" in result.output
        and "Do not read the data files' headers" in result.output
    )


def test_the_workflow_takes_data_as_a_keyword(tmp_path):
    from nnflow.workflows import check

    config = experiment(tmp_path, train="not-yet.csv")
    assert check(config, data=False).data is None
    with pytest.raises(DataError, match="not-yet.csv: no such file"):
        check(config)
    with pytest.raises(TypeError):
        check(config, (), False)  # keyword only


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


@pytest.mark.parametrize(
    ("args", "data"),
    [
        (["--json"], {"checked": True}),
        (["--json", "--no-data"], {"checked": False}),
    ],
)
def test_json_says_what_was_read_and_keeps_its_shape(tmp_path, args, data):
    (tmp_path / "train.csv").write_text(IRIS_HEAD)
    result = run("check", experiment(tmp_path, extra="  drop: [sepal_width]\n"), *args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema("check"))
    assert document["data"]["checked"] is data["checked"]
    if data["checked"]:
        assert document["data"]["files"]["train"]["columns"] == list(COLUMNS)
        assert document["data"]["files"]["train"]["format"] == "csv"
        assert document["data"]["features"] == ["sepal_length", "petal_length", "petal_width"]
        assert document["data"]["target"] == "species"


def test_json_without_a_data_section_says_null():
    document = json.loads(run("check", CONFIGS / "tutorial.yaml", "--json").stdout)
    jsonschema.validate(document, schema("check"))
    assert document["data"] is None


def test_a_data_error_under_json_is_one_error_document(tmp_path):
    result = run("check", experiment(tmp_path, train="nope.csv"), "--json")
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema("error"))
    assert document["exit_code"] == 3 and "nope.csv: no such file" in document["error"]["message"]


# ---------------------------------------------------------------------------
# Columns: did-you-mean, with the training path's words


@pytest.mark.parametrize(
    ("extra", "target", "fragment"),
    [
        ("", "specie", "no column 'specie' (did you mean 'species'?). The file has: sepal_length,"),
        (
            "  features: [sepal_length, petal_lenght]\n",
            "species",
            "no column 'petal_lenght' (did you mean 'petal_length'?)",
        ),
        ("  drop: [sepal_widht]\n", "species", "no column 'sepal_widht' (did you mean 'sepal_width'?)"),
        (
            "  features: [sepal_lenght]\n  drop: [petal_widht]\n",
            "specie",
            "no columns 'specie' (did you mean 'species'?), 'sepal_lenght' (did you mean 'sepal_length'?), 'petal_widht'",
        ),
        ("  drop: [sepal_length, sepal_width, petal_length, petal_width]\n", "species", "no feature columns are left"),
    ],
)
def test_a_wrong_column_is_found_by_check_in_the_words_of_train(tmp_path, extra, target, fragment):
    from nnflow.preprocessing import prepare

    (tmp_path / "train.csv").write_text(IRIS_HEAD)
    config = experiment(tmp_path, target=target, extra=extra)
    result = run("check", config)
    assert result.exit_code == 3, result.output
    assert f"train.csv: {fragment}" in result.stderr and "Traceback" not in result.output
    with pytest.raises(DataError) as trained:
        prepare(load_spec(config), 0)
    assert result.stderr == f"Error: {trained.value}\n"


@pytest.mark.parametrize("role", ["validation", "test"])
@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("sepal_length,sepal_width,petal_length,petal_width,kind", "no column 'species'. The file has:"),
        (
            "sepal_length,sepal_width,petal_lenght,petal_width,species",
            "no column 'petal_length' (did you mean 'petal_lenght'?)",
        ),
    ],
)
def test_validation_and_test_files_need_the_features_and_the_target(tmp_path, role, header, fragment):
    (tmp_path / "train.csv").write_text(IRIS_HEAD)
    (tmp_path / "other.csv").write_text(header + "\n" + IRIS_HEAD.split("\n", 1)[1])
    result = run("check", experiment(tmp_path, extra=f"  {role}: other.csv\n"))
    assert result.exit_code == 3, result.output
    assert f"other.csv: {fragment}" in result.stderr


def test_validation_files_may_lack_dropped_columns(tmp_path):
    (tmp_path / "train.csv").write_text(IRIS_HEAD)
    lines = [",".join(line.split(",")[:1] + line.split(",")[2:]) for line in IRIS_HEAD.splitlines()]
    (tmp_path / "valid.csv").write_text("\n".join(lines) + "\n")
    result = run("check", experiment(tmp_path, extra="  drop: [sepal_width]\n  validation: valid.csv\n"))
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------------------
# Formats: the header read without pandas names the columns as pandas does


def write_table(path: Path, text: str) -> Path:
    data = text.encode()
    name = path.name
    if ".tsv" in name:
        data = data.replace(b",", b"\t")
    if name.endswith(".gz"):
        data = gzip.compress(data)
    elif name.endswith(".bz2"):
        data = bz2.compress(data)
    elif name.endswith(".xz"):
        data = lzma.compress(data)
    elif name.endswith(".zip"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("table.csv", data)
        data = buffer.getvalue()
    if name.endswith((".parquet", ".pq")):
        import pandas as pd

        pd.read_csv(io.StringIO(text)).to_parquet(path)
    else:
        path.write_bytes(data)
    return path


FORMATS = ["t.csv", "t.txt", "t.csv.gz", "t.csv.bz2", "t.csv.xz", "t.csv.zip", "t.tsv", "t.tsv.gz", "t.parquet", "t.pq"]


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_has_its_header_read(tmp_path, name):
    from nnflow.data import read_table

    path = write_table(tmp_path / name, IRIS_HEAD)
    header = headers.read_header(path)
    assert header.columns == COLUMNS == tuple(read_table(path).columns)
    assert header.format == ("parquet" if name.endswith(("parquet", "pq")) else "tsv" if ".tsv" in name else "csv")
    result = run("check", experiment(tmp_path, train=name))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "text",
    [
        "\ufeffa,b,species\n1,2,x\n",  # a byte order mark
        "a,b,species\r\n1,2,x\r\n",  # Windows line ends
        "a,b,species\r1,2,x\r",  # old Mac line ends
        "\n\n  \na,b,species\n1,2,x\n",  # blank lines before the header
        '"a, with a comma",b,species\n1,2,x\n',
        '"a\nover two lines",b,species\n1,2,x\n',
        '"a ""quoted""",b,species\n1,2,x\n',
        "a,,species\n1,2,x\n",  # an unnamed column: `Unnamed: 1`
        " a , b ,species\n1,2,x\n",  # spaces are part of the names
        "größe,höhe,species\n1,2,x\n",
        "a,b,species\n\n\n1,2,x\n",  # blank lines before the rows
    ],
)
def test_header_names_are_the_names_pandas_reads(tmp_path, text):
    from nnflow.data import read_table

    path = tmp_path / "t.csv"
    path.write_bytes(text.encode())
    assert list(headers.read_header(path).columns) == list(read_table(path).columns)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty; expected a header row and data rows."),
        ("\n \n\n", "the file is empty; expected a header row and data rows."),
        ("a,b,species\n", "has a header but no data rows."),
        ("a,b,species\n\n  \n", "has a header but no data rows."),
        ("a,b,a\n1,2,3\n", "the header names column 'a' twice"),
        ("a,b\x00,species\n1,2,x\n", "holds binary data, not a text table"),
        ("a,b,sp\xe9cies\n", "not UTF-8 text (byte 0xe9 on line 1)"),
        (
            'a,"b,species\n1,2,x\n3,4,y\n',
            "has a header but no data rows (the header runs from line 1 to the end of the file, line 3: is a quote left open?)",
        ),
        ("a," + "b" * 131_073 + ",species\n1,2,x\n", "the header (line 1): a cell holds more than 131,072 characters"),
        (
            '\na,"b\n' + "b" * 131_073 + '",species\n1,2,x\n',
            "the header (line 2): a cell holds more than 131,072 characters (it runs on to line 3)",
        ),
    ],
)
def test_a_bad_header_is_refused_by_check(tmp_path, text, fragment):
    (tmp_path / "train.csv").write_bytes(text.encode("latin-1") if "\xe9" in text else text.encode())
    result = run("check", experiment(tmp_path))
    assert result.exit_code == 3, result.output
    assert f"train.csv: {fragment}" in result.stderr and "Traceback" not in result.output


def test_a_header_cell_at_the_limit_is_read(tmp_path):
    name = "b" * headers.CELL_LIMIT
    path = write_table(tmp_path / "t.csv", f"a,{name},species\n1,2,x\n")
    assert headers.read_header(path).columns == ("a", name, "species")


def test_the_header_read_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(headers, "HEADER_LIMIT", 1000)
    path = tmp_path / "t.csv"
    path.write_text(",".join(f"column_{i}" for i in range(500)) + "\n1\n")
    with pytest.raises(DataError, match=r"t.csv: no header record in its first 1,000 characters"):
        headers.read_header(path)


def test_a_long_data_cell_passes_check_and_is_refused_by_train(tmp_path):
    from nnflow.data import read_table

    path = tmp_path / "train.csv"
    path.write_text(IRIS_HEAD.replace("setosa", "s" * 140_000, 1))
    assert run("check", experiment(tmp_path)).exit_code == 0
    with pytest.raises(
        DataError,
        match=r"train.csv: row 1 \(line 2\), column 'species': a cell of 140,000 characters; cells may hold at most 131,072",
    ):
        read_table(path)


def test_a_zip_needs_exactly_one_file(tmp_path):
    for count in (0, 2):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for index in range(count):
                archive.writestr(f"t{index}.csv", IRIS_HEAD)
        (tmp_path / "train.csv.zip").write_bytes(buffer.getvalue())
        result = run("check", experiment(tmp_path, train="train.csv.zip"))
        assert result.exit_code == 3 and f"the ZIP archive holds {count} files" in result.stderr


def test_zst_is_read_only_when_zstandard_is_installed(tmp_path):
    if headers._importable("zstandard"):
        import zstandard

        (tmp_path / "train.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(IRIS_HEAD.encode()))
        result = run("check", experiment(tmp_path, train="train.csv.zst"))
        assert result.exit_code == 0 and "4 feature columns" in result.output
    else:
        (tmp_path / "train.csv.zst").write_bytes(b"not read")
        result = run("check", experiment(tmp_path, train="train.csv.zst"))
        assert result.exit_code == 0, result.output
        assert "note: train.csv.zst: not read (reading .zst files needs the zstandard package)" in result.stderr
        from nnflow.data import read_table

        with pytest.raises(
            DataError, match=r"train.csv.zst: reading .zst files needs the zstandard package \(pip install zstandard\)"
        ):
            read_table(tmp_path / "train.csv.zst")


# ---------------------------------------------------------------------------
# Parquet: the schema, and the types nnflow refuses


def parquet_with(path: Path, column, name: str = "extra") -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 12
    table = pa.table(
        {"x": [float(i) for i in range(n)], name: column(n), "species": [["a", "b", "c"][i % 3] for i in range(n)]}
    )
    pq.write_table(table, path)
    return path


def _pa():
    import pyarrow as pa

    return pa


PARQUET_REFUSED = {
    "list": (
        lambda n: _pa().array([[i] for i in range(n)], _pa().list_(_pa().int64())),
        "holds lists, structs or maps",
    ),
    "large_list": (
        lambda n: _pa().array([["a"]] * n, _pa().large_list(_pa().string())),
        "holds lists, structs or maps",
    ),
    "fixed_size_list": (
        lambda n: _pa().array([[1, 2]] * n, _pa().list_(_pa().int64(), 2)),
        "holds lists, structs or maps",
    ),
    "struct": (lambda n: _pa().array([{"w": i} for i in range(n)]), "holds lists, structs or maps"),
    "map": (
        lambda n: _pa().array([[("k", i)] for i in range(n)], _pa().map_(_pa().string(), _pa().int64())),
        "holds lists, structs or maps",
    ),
    "date32": (
        lambda n: _pa().array([datetime.date(2024, 1, 1 + i) for i in range(n)], _pa().date32()),
        "holds dates or times",
    ),
    "time64": (
        lambda n: _pa().array([datetime.time(1, i) for i in range(n)], _pa().time64("us")),
        "holds dates or times",
    ),
    "timestamp": (
        lambda n: _pa().array([datetime.datetime(2024, 1, 1 + i) for i in range(n)], _pa().timestamp("ms")),
        "holds dates or times",
    ),
    "duration": (lambda n: _pa().array(list(range(n)), _pa().duration("s")), "holds dates or times"),
}


@pytest.mark.parametrize("kind", sorted(PARQUET_REFUSED))
def test_parquet_dates_and_nested_features_are_refused_by_check_and_train(tmp_path, kind):
    from nnflow.preprocessing import prepare

    column, fragment = PARQUET_REFUSED[kind]
    parquet_with(tmp_path / "train.parquet", column)
    config = experiment(tmp_path, train="train.parquet")
    result = run("check", config)
    assert result.exit_code == 3, result.output
    assert f"train.parquet: feature 'extra' {fragment}" in result.stderr
    assert "or list the column under `data.drop`." in result.stderr
    with pytest.raises(DataError, match=f"train.parquet: feature 'extra' {fragment}"):
        prepare(load_spec(config), 0)
    # Dropped, the column is no problem.
    assert run("check", experiment(tmp_path, train="train.parquet", extra="  drop: [extra]\n")).exit_code == 0


@pytest.mark.parametrize("kind", ["list", "struct", "map", "timestamp"])
def test_a_parquet_target_of_lists_or_dates_is_refused(tmp_path, kind):
    from nnflow.preprocessing import prepare

    column, fragment = PARQUET_REFUSED[kind]
    parquet_with(tmp_path / "train.parquet", column, name="label")
    config = experiment(tmp_path, train="train.parquet", target="label", extra="  drop: [species]\n")
    result = run("check", config)
    assert result.exit_code == 3, result.output
    assert f"train.parquet: target 'label' {fragment}" in result.stderr and "or choose another target." in result.stderr
    with pytest.raises(DataError, match=f"target 'label' {fragment}"):
        prepare(load_spec(config), 0)


@pytest.mark.parametrize(
    "column",
    [
        lambda n: _pa().array(["a", "b"] * (n // 2)).dictionary_encode(),
        lambda n: _pa().array([b"a", b"b"] * (n // 2)),
        lambda n: _pa().array([True, False] * (n // 2)),
        lambda n: _pa().array(["a", "b"] * (n // 2), _pa().large_string()),
    ],
    ids=["dictionary", "binary", "bool", "large_string"],
)
def test_parquet_categories_bytes_and_booleans_pass(tmp_path, column):
    parquet_with(tmp_path / "train.parquet", column)
    assert run("check", experiment(tmp_path, train="train.parquet")).exit_code == 0


def test_a_nested_feature_in_new_rows_is_refused_at_predict(tmp_path):
    import pandas as pd

    from nnflow.preprocessing import Preprocessing

    preprocessing = Preprocessing(
        ["x", "colour"], {"colour": ["blue", "red"]}, [], "y", "regression", None, None, [3], False
    )
    frame = pd.DataFrame({"x": [1.0, 2.0], "colour": [["red"], ["blue"]]})
    with pytest.raises(
        DataError, match=r"new.parquet: feature 'colour' holds lists, structs or maps \(row 1: \['red'\]\)"
    ):
        preprocessing.features(frame, Path("new.parquet"))


def test_a_saved_pandas_index_is_not_a_column(tmp_path):
    import pandas as pd

    from nnflow.data import read_table

    frame = pd.read_csv(io.StringIO(IRIS_HEAD))
    frame.index = [f"r{i}" for i in range(len(frame))]
    frame.to_parquet(tmp_path / "train.parquet")
    assert (
        headers.read_header(tmp_path / "train.parquet").columns
        == COLUMNS
        == tuple(read_table(tmp_path / "train.parquet").columns)
    )


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        (
            lambda pa: pa.table({"x": pa.array([], pa.float64()), "species": pa.array([], pa.string())}),
            "train.parquet: has no rows.",
        ),
        (
            lambda pa: pa.Table.from_arrays(
                [pa.array([1.0]), pa.array([2.0]), pa.array(["a"])], names=["x", "x", "species"]
            ),
            "train.parquet: names column(s) 'x' twice",
        ),
    ],
)
def test_an_empty_or_ambiguous_parquet_file_is_refused(tmp_path, table, fragment):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(table(pa), tmp_path / "train.parquet")
    result = run("check", experiment(tmp_path, train="train.parquet"))
    assert result.exit_code == 3 and fragment in result.stderr


def test_not_parquet_is_refused_by_check(tmp_path):
    (tmp_path / "train.parquet").write_text(IRIS_HEAD)
    result = run("check", experiment(tmp_path, train="train.parquet"))
    assert result.exit_code == 3 and "train.parquet: not a readable Parquet file" in result.stderr


# ---------------------------------------------------------------------------
# Only regular files are opened: FIFOs, devices, folders, links


@pytest.mark.parametrize("name", ["train.csv", "train.csv.gz", "train.tsv", "train.parquet"])
def test_a_fifo_fails_check_and_train_at_once(tmp_path, name):
    os.mkfifo(tmp_path / name)
    config = experiment(tmp_path, train=name)
    for command in ("check", "train"):
        outcome = finishes(
            lambda command=command: run(
                command, config, *(["-q", "--out", tmp_path / "run"] if command == "train" else [])
            )
        )
        result = outcome["value"]
        assert result.exit_code == 3, result.output
        assert f"{name}: is a named pipe (FIFO), not a regular file; expected a CSV or Parquet file." in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_fifo_as_validation_file_fails_check_at_once(tmp_path):
    (tmp_path / "train.csv").write_text(IRIS_HEAD)
    os.mkfifo(tmp_path / "valid.csv")
    result = finishes(lambda: run("check", experiment(tmp_path, extra="  validation: valid.csv\n")))["value"]
    assert result.exit_code == 3 and "valid.csv: is a named pipe (FIFO)" in result.stderr


def _readers():
    from nnflow import data

    return {
        "read_table": data.read_table,
        "iter_table": lambda path: next(data.iter_table(path, 10)),
        "sha256": data.sha256,
        "read_header": headers.read_header,
        "open_table": lambda path: headers.open_table(path).__enter__(),
    }


@pytest.mark.parametrize("reader", ["read_table", "iter_table", "sha256", "read_header", "open_table"])
@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.parquet"])
def test_no_reader_waits_on_a_fifo(tmp_path, reader, name):
    os.mkfifo(tmp_path / name)
    outcome = finishes(lambda: _readers()[reader](tmp_path / name))
    assert isinstance(outcome.get("error"), DataError), outcome
    assert "is a named pipe (FIFO), not a regular file" in str(outcome["error"])


def test_table_rows_and_row_line_give_up_on_a_fifo(tmp_path):
    from nnflow.data import table_rows

    os.mkfifo(tmp_path / "t.parquet")
    os.mkfifo(tmp_path / "t.csv")
    assert finishes(lambda: table_rows(tmp_path / "t.parquet")) == {"value": None}
    assert finishes(lambda: headers.row_line(tmp_path / "t.csv", 3)) == {"value": None}


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (
            lambda path: path.symlink_to("/dev/zero"),
            "is a character device, not a regular file; expected a CSV or Parquet file.",
        ),
        (lambda path: path.mkdir(), "is a directory; expected a CSV or Parquet file."),
        (
            lambda path: (path.symlink_to(path.with_name("loop")), path.with_name("loop").symlink_to(path)),
            "a loop of symbolic links (a link that points, through others, back at itself).",
        ),
        (lambda path: path.symlink_to("gone.csv"), "a symbolic link to gone.csv, which does not exist."),
        (lambda path: None, "no such file (paths in an experiment's `data:` are relative to the experiment file)."),
    ],
    ids=["device", "folder", "link-loop", "dangling-link", "missing"],
)
def test_what_is_not_a_regular_file_is_refused_by_check_and_the_readers(tmp_path, make, fragment):
    from nnflow.data import read_table, sha256

    make(tmp_path / "train.csv")
    result = finishes(lambda: run("check", experiment(tmp_path)))["value"]
    assert result.exit_code == 3, result.output
    assert f"train.csv: {fragment}" in result.stderr
    for reader in (read_table, sha256):
        outcome = finishes(lambda reader=reader: reader(tmp_path / "train.csv"))
        assert isinstance(outcome.get("error"), DataError) and fragment in str(outcome["error"])


def test_a_path_under_a_file_is_said_so(tmp_path):
    (tmp_path / "data").write_text("a file, not a folder")
    result = run("check", experiment(tmp_path, train="data/train.csv"))
    assert result.exit_code == 3 and "data/train.csv: a part of the path is a file, not a folder." in result.stderr


def test_an_unreadable_file_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "train.csv"
    path.write_text(IRIS_HEAD)
    real_open = os.open

    def refusing(file, flags, *args, **kwargs):
        if os.fspath(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing)
    result = run("check", experiment(tmp_path))
    assert result.exit_code == 3 and "train.csv: permission denied." in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_refused_for_real(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(IRIS_HEAD)
    path.chmod(0)
    result = run("check", experiment(tmp_path))
    assert result.exit_code == 3 and "train.csv: permission denied." in result.stderr


# ---------------------------------------------------------------------------
# Lines of rows


@pytest.mark.parametrize(
    ("text", "row", "line"),
    [
        ("h\n1\n2\n3\n", 3, 4),
        ("h\r\n1\r\n2\r\n", 2, 3),
        ("h\r1\r2\r", 2, 3),
        ('h,n\n1,"a,b"\n2,c\n', 2, 3),  # quoted, on one line
        ('h,n\n1,"a\nb"\n2,c\n', 2, 4),  # a cell over two lines
        ('h,n\n1,"a\r\nb\r\nc"\n2,c\n3,d\n', 3, 6),
        ('"h\nx",n\n1,2\n', 1, 3),  # the header over two lines
        ("h\n1\n\n2\n", 2, 4),  # a blank line is skipped
        ("h\n1\n  \t \n2\n", 2, 4),  # so is a line of spaces
        ("\nh\n1\n", 1, 3),  # and one before the header
        ('h,n\n1,"' + "x" * 200_000 + '"\n2,c\n', 2, 3),  # past the csv module's field limit
        ('h,n\n1,"' + "x" * 200_000 + '\n"\n2,c\n', 2, 4),
        ('h,n\n1,a"b\n2,c\n', 2, 3),  # a quote inside a cell is text
    ],
)
def test_rows_are_located_on_their_physical_line(tmp_path, text, row, line):
    path = tmp_path / "t.csv"
    path.write_text(text, newline="")
    assert headers.row_line(path, row) == line
    compressed = tmp_path / "t.csv.gz"
    compressed.write_bytes(gzip.compress(text.encode()))
    assert headers.row_line(compressed, row) == line


def test_a_tab_line_is_a_row_of_a_tsv_file(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\n\t\n1\t2\n")
    assert headers.row_line(path, 2) == 3


_CELLS = st.text(alphabet=st.sampled_from(list('ab,"\n\r ')), max_size=6)


def _csv_cell(cell: str, quote: bool) -> str:
    if quote or any(c in cell for c in ',"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(_CELLS, min_size=2, max_size=2), min_size=1, max_size=6),
    blank_after=st.sets(st.integers(0, 5)),
    quote=st.booleans(),
)
def test_row_lines_agree_with_pandas(tmp_path, rows, blank_after, quote):
    """Property: pandas reads the rows as written (what `row N` counts), and each row is located
    on the physical line it starts on (a line ends at \\n, \\r or \\r\\n, inside quotes too)."""
    import pandas as pd

    text, starts, line = "a,b\n", [], 2
    for index, row in enumerate(rows):
        text += ",".join(_csv_cell(cell, quote) for cell in row) + "\n"
        starts.append(line)
        line += sum(cell.count("\n") + cell.count("\r") - cell.count("\r\n") for cell in row) + 1
        if index in blank_after:
            text += "\n"
            line += 1
    path = tmp_path / "p.csv"
    path.write_text(text, newline="")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert frame.fillna("").to_numpy().tolist() == [[cell for cell in row] for row in rows]
    for number, start in enumerate(starts, start=1):
        assert headers.row_line(path, number) == start
