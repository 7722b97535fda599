import numpy as np
import pytest

from benchmark.layer_error import layer_errors, render, tensor_key
from tests.conftest import error_lines, run_cli
from train.cli import EXIT_INPUT


def test_tensors_are_keyed_by_layer_and_op_alike_in_ptq_and_qat_exports():
    ptq = "m/conv_pw_5_relu/Relu6;m/conv_pw_5_bn/FusedBatchNormV3;m/conv_pw_5/Conv2D"
    assert tensor_key(ptq) == tensor_key("m/quant_conv_pw_5_bn/FusedBatchNormV3;m/quant_conv_pw_5/Conv2D") \
        == ("conv_pw_5", "Conv2D")
    assert tensor_key("m/pool/Mean") == ("pool", "Mean")
    assert tensor_key("tfl.quantize") == ("tfl.quantize", "")


def test_float32_against_itself_is_exact_and_int8_is_not(tiny_export, demo_data):
    f32, int8 = tiny_export["float32"]["path"], tiny_export["int8"]["path"]
    sources, same = layer_errors(f32, f32, str(demo_data), images=3)
    assert sources and all(e == 0.0 for row in same for e in row["relative_error"].values())
    sources, rows = layer_errors(f32, int8, str(demo_data), images=3)
    layers = [r["layer"] for r in rows]
    assert {"conv1", "conv_pw_13", "pool", "real_fake", "output"} <= set(layers)
    assert layers.index("conv1") < layers.index("conv_pw_13") < layers.index("pool")  # graph order
    errors = np.array([[r["relative_error"][s] for s in sources] for r in rows])
    assert np.isfinite(errors).all() and (errors >= 0).all()
    assert errors[layers.index("conv_pw_13")].min() > 0  # int8 activations are not the float ones
    lo, hi = rows[layers.index("conv_pw_13")]["quantised_range"]  # a ReLU6 output: [0, 6] whatever the data
    assert lo == pytest.approx(0.0, abs=1e-6) and hi == pytest.approx(6.0, abs=0.03)
    assert all(r["quantised_range"] is None for r in same)
    table = render(sources, rows)
    assert table.count("\n") == len(rows) + 2 and all(s in table.splitlines()[0] for s in sources)


def test_a_quantised_reference_is_a_one_line_error(tiny_export, demo_data):
    proc = run_cli("benchmark.layer_error", "--float", tiny_export["int8"]["path"],
                   "--quantised", tiny_export["float32"]["path"], "--data", str(demo_data))
    assert proc.returncode == EXIT_INPUT
    (line,) = error_lines(proc)
    assert "--float takes the float32 one" in line
