"""train-model --distribute: MirroredStrategy on one CPU device trains exactly as without it;
a multi-worker cluster of two processes (TF_CONFIG, one CPU replica each) trains one model that
only worker 0 writes; other backends and a missing TF_CONFIG stop with one line."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from deepgmap_core.cli.train_model import main
from deepgmap_core.distribute import distribution_strategy
from deepgmap_core.errors import InputError
from deepgmap_core.genome import Genome, one_hot_windows
from deepgmap_core.models.files import load_model
from deepgmap_core.settings import TrainSettings
from deepgmap_core.training import train_model
from deepgmap_core.windows import read_windows_table

SMALL = {"width_scale": 0.05, "epochs": 2, "steps_per_epoch": 4, "batch_size": 20, "learning_rate": 1e-3,
         "max_valid_windows": 201, "seed": 1}


def small_training_arguments(test_data, output):
    return ["--genome", str(test_data / "genome.fa.gz"), "--windows", str(test_data / "windows.tsv"),
            "--width-scale", "0.05", "--epochs", "2", "--steps-per-epoch", "4", "--batch-size", "20",
            "--learning-rate", "1e-3", "--max-valid-windows", "201", "--seed", "1", "-o", str(output)]


def train(test_data, path, distribute):
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        train_model(genome, read_windows_table(str(test_data / "windows.tsv")),
                    TrainSettings(**SMALL, distribute=distribute), str(path), "test")
    return load_model(str(path))


def test_mirrored_on_one_cpu_trains_as_without_it(test_data, tmp_path):
    plain, _ = train(test_data, tmp_path / "plain.keras", "")
    mirrored, info = train(test_data, tmp_path / "mirrored.keras", "mirrored")
    assert info.settings["distribute"] == "mirrored" and info.replicas == 1
    assert [h["epoch"] for h in info.state["history"]] == [1, 2]
    # The written-out distributed step is Keras's train_on_batch: the same weights, bit for bit.
    for ours, keras_own in zip(mirrored.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(ours, keras_own)
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        x = one_hot_windows(genome, ["chr20"] * 8, np.arange(8) * 300 + 1_000_000, 1000)
    predictions = mirrored.predict(x, verbose=0)
    assert predictions.shape == (8, 2) and ((predictions > 0) & (predictions < 1)).all()


def free_port():
    with socket.socket() as listener:
        listener.bind(("localhost", 0))
        return listener.getsockname()[1]


def test_multi_worker_cluster_of_two_processes(test_data, tmp_path):
    workers = [f"localhost:{free_port()}" for _ in range(2)]
    script = "import sys; from deepgmap_core.cli.train_model import main; sys.exit(main(sys.argv[1:]))"
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        arguments = small_training_arguments(test_data, tmp_path / f"worker{index}.keras")
        arguments += ["--distribute", "multi-worker", "--metrics", str(tmp_path / f"worker{index}.tsv"), "-p", "1"]
        processes.append(subprocess.Popen([sys.executable, "-c", script, *arguments], stderr=subprocess.PIPE,
                                          text=True, env=dict(os.environ, TF_CONFIG=json.dumps(config))))
    errors = [process.communicate(timeout=300)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], errors
    assert all("2 replica(s) (multi-worker)" in text for text in errors)
    # Worker 0 writes the model; worker 1 saved its copy in a private folder, now removed.
    assert not (tmp_path / "worker1.keras").exists()
    assert [name for name in os.listdir(tmp_path) if name.endswith(".keras")] == ["worker0.keras"]
    model, info = load_model(str(tmp_path / "worker0.keras"))
    assert info.replicas == 2 and info.settings["distribute"] == "multi-worker"
    assert model.output_shape == (None, 2)
    # Both workers held the same synchronised weights, so they scored the same validation windows alike.
    scores = [[line for line in (tmp_path / f"worker{index}.tsv").read_text().splitlines()
               if not line.startswith("##command=")] for index in range(2)]
    assert scores[0] == scores[1] and any(line.startswith("best\tvalid\tCTCF") for line in scores[0])


def test_other_backends_and_missing_cluster_stop_with_one_line(test_data, tmp_path, capsys, monkeypatch):
    for backend in ("torch", "jax"):
        with pytest.raises(InputError, match=f"needs the TensorFlow backend, not {backend}"):
            distribution_strategy("mirrored", backend)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(small_training_arguments(test_data, tmp_path / "model.keras") + ["--distribute", "multi-worker"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepgmap-train-model: error: --distribute multi-worker needs TF_CONFIG")
    assert os.listdir(tmp_path) == []
