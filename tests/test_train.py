"""`mcodec train image`: a tiny run trains, checkpoints, resumes and exports a usable model file."""

import pytest
from conftest import random_image
from PIL import Image

from mcodec.cli.main import main


def run(capfd, *args):
    with pytest.raises(SystemExit) as e:
        main(list(map(str, args)))
    out, err = capfd.readouterr()
    return e.value.code, out, err


@pytest.mark.parametrize("codec", ["factorized", "meanscale"])
def test_train_resume_export_and_use(capfd, tmp_path, codec):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(random_image(3, 72, 80, seed=i).permute(1, 2, 0).numpy()).save(data / f"{i}.png")
    model = tmp_path / "m.safetensors"
    common = [
        "train",
        "image",
        data,
        "--codec",
        codec,
        "--out",
        model,
        "--batch",
        2,
        "--crop",
        64,
        "--width",
        8,
        8,
    ]
    code, _, err = run(capfd, *common, "--steps", 2)
    assert code == 0 and model.exists(), err
    code, _, err = run(capfd, *common, "--steps", 3, "--force")
    assert code == 0 and "resuming from step 2" in err, err
    code, _, err = run(capfd, *common, "--steps", 3)
    assert code == 1 and "exists" in err
    bit = tmp_path / "x.mcd"
    assert run(capfd, "encode", data / "0.png", bit, "--codec", codec, "--weights", model)[0] == 0
    assert run(capfd, "decode", bit, tmp_path / "x.png", "--weights", model)[0] == 0
    code, _, err = run(capfd, "decode", bit, tmp_path / "y.png")  # default weights: refused
    assert code == 1 and ("other weights" in err or "no default weights" in err)
