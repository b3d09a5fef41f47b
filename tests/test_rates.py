"""mcodec.rates: the one place bits per pixel and kbit/s are computed (encode's summary, eval, demo)."""

import json

import pytest

from mcodec import encode_file
from mcodec.cli.main import main


def test_bits_per_pixel_and_kbit_per_second():
    from mcodec.rates import bits_per_pixel, kbit_per_second

    assert bits_per_pixel(1000, 400 * 300) == pytest.approx(8000 / 120000)
    assert kbit_per_second(750, 1.0) == 6.0
    assert kbit_per_second(2295, 44580 / 16000) == pytest.approx(18.36 / 2.78625)


def test_coded_rate_from_media_and_header_params():
    from mcodec.rates import coded_rate

    assert coded_rate(1500, "image", {"width": 400, "height": 300, "quality": 2}) == (0.1, "bpp")
    assert coded_rate(4800, "video", {"width": 80, "height": 64, "frames": 5}) == (1.5, "bpp")
    assert coded_rate(3000, "audio", {"samples": 48000, "sample_rate": 24000}) == (12.0, "kbit/s")
    with pytest.raises(ValueError, match="text"):
        coded_rate(10, "text", {})


def test_encode_summary_reports_the_coded_rate(capfd, tmp_path, sample_path):
    """The CLI's summary shows the rate of the file written, as ``coded_rate`` gives it from its header."""
    from mcodec.rates import coded_rate

    with pytest.raises(SystemExit):
        main(["encode", str(sample_path), str(tmp_path / "a.mcd"), "--quality", "3"])
    err = capfd.readouterr().err
    with pytest.raises(SystemExit):
        main(["info", str(tmp_path / "a.mcd"), "--json"])
    d = json.loads(capfd.readouterr().out)
    value, unit = coded_rate(d["bytes"], d["media"], d["params"])
    assert f"{value:.4f} {unit}" in err
    r = encode_file(sample_path, tmp_path / "b.mcd", quality=3)
    assert coded_rate(r.output_bytes, r.media, r.params) == (value, unit)
