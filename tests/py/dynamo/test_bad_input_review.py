"""Bad input through the public API: each mistake gets a clear error naming the bad value (or a
correct result), never a crash deep inside torch/TensorRT or a silently ignored setting."""
from __future__ import annotations

import logging

import pytest
import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx import Input


class _MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = torch.nn.Linear(8, 16)
        self.l2 = torch.nn.Linear(16, 4)

    def forward(self, x):
        return self.l2(torch.relu(self.l1(x)))


def _compile(module, inputs, **kwargs):
    kwargs.setdefault("progress", False)
    return trtx.compile(module, inputs, **kwargs)


# -- Input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(-1, 8), (2, -3)])
def test_input_rejects_negative_dims(shape):
    with pytest.raises(ValueError, match=r"-\d"):
        Input(shape=shape)


@pytest.mark.parametrize("shape", [(2.5, 8), (None, 8), ("2", 8)])
def test_input_rejects_non_integer_dims(shape):
    with pytest.raises(TypeError, match="integer"):
        Input(shape=shape)


def test_input_rejects_bare_int_shape():
    with pytest.raises(TypeError, match=r"shape.*8"):
        Input(shape=8)


def test_input_static_zero_dim_in_min_opt_max_form():
    # torch.compile's backend describes every input in min/opt/max form; a static empty dim is fine
    spec = Input(min_shape=(0, 4), opt_shape=(0, 4), max_shape=(0, 4))
    assert spec.dynamic_dims == {}
    assert spec.example().shape == (0, 4)


def test_torch_compile_empty_tensor():
    class M(torch.nn.Module):
        def forward(self, x):
            return (x * 2 + 1).relu()

    model = M()
    fast = torch.compile(model, backend="tensorrt_rtx", options={"progress": False, "min_block_size": 1})
    report = trtx.verify(fast, torch.randn(0, 4), reference_module=model)
    assert report.ok, str(report)


@pytest.mark.parametrize("inputs", [None, {"x": torch.randn(2, 8)}, "x"])  # one Input/tensor alone is [x]
def test_compile_inputs_must_be_a_sequence(inputs):
    with pytest.raises(TypeError, match=r"inputs.*list"):
        _compile(_MLP(), inputs)


# -- settings ---------------------------------------------------------------------------------

def test_torch_executed_ops_as_one_string_is_not_split_into_characters():
    compiled = _compile(_MLP(), [torch.randn(2, 8)], min_block_size=1, torch_executed_ops="aten.relu.default")
    assert "aten.relu.default" in compiled.compile_report.fallback_ops, compiled.compile_report.format()


def test_compute_capabilities_as_one_string():
    compiled = _compile(_MLP(), [torch.randn(2, 8)], compute_capabilities="SM86")
    assert compiled.compile_report.engines


@pytest.mark.parametrize("value", ["3", -1, 0, 2.5])
def test_min_block_size_must_be_a_positive_int(value):
    with pytest.raises((TypeError, ValueError), match="min_block_size"):
        _compile(_MLP(), [torch.randn(2, 8)], min_block_size=value)


def test_torch_compile_bad_option_type_names_the_option():
    with pytest.raises(Exception, match="min_block_size"):
        torch.compile(_MLP(), backend="tensorrt_rtx", options={"min_block_size": "x"})(torch.randn(2, 8))


# -- compile ----------------------------------------------------------------------------------

def test_wrong_number_of_inputs_names_forward_signature():
    with pytest.raises(TypeError, match=r"2 input.*forward\(x\)"):
        _compile(_MLP(), [torch.randn(2, 8), torch.randn(2, 8)])


def test_keyword_only_forward_arg_is_explained():
    class KW(torch.nn.Module):
        def forward(self, x, *, y):
            return x + y

    with pytest.raises(TypeError, match="keyword"):
        _compile(KW(), [torch.randn(2, 8), torch.randn(2, 8)])


def test_shape_mismatch_names_the_inputs():
    with pytest.raises(RuntimeError) as info:
        _compile(_MLP(), [Input(shape=(2, 8, 3))])
    assert any("(2, 8, 3)" in note for note in getattr(info.value, "__notes__", [])), info.value


def test_train_mode_module_is_compiled_for_inference_with_a_warning_and_left_in_train_mode(caplog):
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.5), torch.nn.ReLU()).train()
    with caplog.at_level(logging.WARNING, logger="torch_tensorrt_rtx"):
        compiled = _compile(model, [torch.randn(4, 8)], min_block_size=1)
    assert "train" in caplog.text
    assert model.training, "compile switched the caller's module to eval mode"
    x = torch.randn(4, 8)
    report = trtx.verify(compiled, x, reference_module=model.eval())
    assert report.ok, str(report)


# -- save / load ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compiled_mlp():
    return trtx.compile(_MLP().eval(), [Input(min_shape=(1, 8), opt_shape=(4, 8), max_shape=(16, 8))],
                        progress=False)


def test_save_to_a_directory_names_the_path(compiled_mlp, tmp_path):
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        trtx.save(compiled_mlp, tmp_path)


def test_save_into_missing_directory_names_it(compiled_mlp, tmp_path):
    with pytest.raises(FileNotFoundError, match="nodir"):
        trtx.save(compiled_mlp, tmp_path / "nodir" / "m.pt2")


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt2"):
        trtx.load(tmp_path / "missing.pt2")


def test_load_non_pt2_file_names_the_path(tmp_path):
    path = tmp_path / "junk.pt2"
    path.write_text("hello")
    with pytest.raises(ValueError, match=r"junk\.pt2.*torch_tensorrt_rtx\.save"):
        trtx.load(path)


def test_load_torch_save_file_names_the_path(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(_MLP().state_dict(), path)
    with pytest.raises(ValueError, match=r"weights\.pt.*torch_tensorrt_rtx\.save"):
        trtx.load(path)


def test_load_truncated_pt2_names_the_path(compiled_mlp, tmp_path):
    path = tmp_path / "m.pt2"
    trtx.save(compiled_mlp, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"m\.pt2"):
        trtx.load(path)


# -- verify -----------------------------------------------------------------------------------

@pytest.mark.parametrize("count", [0, 2])
def test_verify_wrong_number_of_inputs(compiled_mlp, count):
    with pytest.raises(TypeError, match=rf"1 input.*got {count}"):
        trtx.verify(compiled_mlp, *[torch.randn(4, 8)] * count)


def test_verify_module_that_mutates_its_input_is_compared_on_the_original_input():
    class AddInPlace(torch.nn.Module):
        def forward(self, x):
            x.add_(1)
            return torch.relu(x * 2 + 1)

    model = AddInPlace()
    compiled = _compile(model, [torch.randn(4, 8)], min_block_size=1)
    x = torch.randn(4, 8)
    report = trtx.verify(compiled, x, reference_module=model)
    assert report.ok, str(report)


def test_load_directory_says_it_is_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match="directory"):
        trtx.load(tmp_path)
