from __future__ import annotations

import pytest
from norm_bytes import norm_file

from ctrflow.cli import main
from ctrflow.readers import GeneratorConfig, generate
from ctrflow.readers.check import check_dataset


def test_norm_statistics_count_records_nnz_and_key_ranges(write_norm):
    samples = [([1.0, 0.5], [[3], [7, 8]]), ([0.0, 0.5], [[], [9]]), ([1.0, 0.5], [[4], []])]
    source = write_norm([norm_file(samples, 1, 1, 2)])
    stats = check_dataset(source)
    assert (stats.records, stats.files, stats.num_slots) == (3, 1, 2)
    assert dict(stats.nnz_histogram) == {0: 2, 1: 3, 2: 1}
    assert stats.key_min.tolist() == [3, 7] and stats.key_max.tolist() == [4, 9]
    assert stats.label_positive == 2


def test_corrupt_records_are_counted_not_fatal(write_norm):
    content = bytearray(norm_file([([1.0, 0.5], [[3], [7]])] * 3, 1, 1, 2))
    content[-1] ^= 1
    stats = check_dataset(write_norm([bytes(content)]))
    assert (stats.records, stats.corrupt_records) == (2, 1)


def test_cli_prints_statistics_of_a_generated_parquet_dataset(tmp_path, capsys):
    source = f"{tmp_path}/p/file_list.txt"
    generate(
        GeneratorConfig(
            "parquet",
            1,
            2,
            2,
            True,
            source,
            f"{tmp_path}/p/test.txt",
            (10, 20),
            num_files=2,
            eval_num_files=1,
            num_samples_per_file=50,
            seed=1,
            progress=False,
        )
    )
    assert main(["data", "check", source, "--i64"]) == 0
    out = capsys.readouterr().out
    assert "format: parquet   files: 2   records: 100" in out
    assert "slot   1: keys in [" in out


def test_cli_checks_a_raw_file_with_its_slot_count(tmp_path, capsys):
    cfg = GeneratorConfig(
        "raw",
        1,
        13,
        3,
        False,
        f"{tmp_path}/t.bin",
        f"{tmp_path}/e.bin",
        (4, 5, 6),
        num_samples=30,
        eval_num_samples=10,
        seed=2,
        progress=False,
    )
    generate(cfg)
    assert main(["data", "check", cfg.source, "--slots", "3"]) == 0
    out = capsys.readouterr().out
    assert "records: 30" in out and "label 0: mean 0.5000" in out


def test_cli_reports_a_check_type_mismatch_with_exit_code_1(write_norm, capsys):
    source = write_norm([norm_file([([1.0, 0.5], [[3], [7]])], 1, 1, 2, "none")])
    assert main(["data", "check", source, "--check", "sum"]) == 1
    assert "written with Check_t.Non" in capsys.readouterr().err


def test_cli_raw_without_slots_is_an_error(tmp_path, capsys):
    path = tmp_path / "x.bin"
    path.write_bytes(b"")
    assert main(["data", "check", str(path)]) == 1
    assert "pass --slots N" in capsys.readouterr().err


def test_cli_without_subcommand_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        main(["data"])
    assert exit_info.value.code == 2
