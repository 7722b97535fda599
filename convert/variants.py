"""The export variants and the QAT defaults, named once. TensorFlow-free, so `python -m convert --help` stays fast."""

DEFAULT_VARIANTS = ("float32", "float16", "dynamic", "int8")
VARIANTS = DEFAULT_VARIANTS + ("int8_qat",)  # int8_qat trains for a few epochs, so only on request
INTEGER_VARIANTS = ("int8", "int8_qat")
ELA_IN_GRAPH_VARIANTS = ("float32", "int8")  # what an export with the ELA in its graph can be (export_run says why)
# The input and output type of every integer export: standard clients (MediaPipe Tasks, the Task Library)
# take uint8 or float32 tensors only, so a quantised int8 output would be refused.
INTEGER_IO_DTYPE = "uint8"
VARIANT_TEXT = {"int8_qat": "int8 after quantisation-aware training"}
QAT_EPOCHS = 2  # int8_qat defaults
QAT_LEARNING_RATE = 1e-5  # a tenth of the paper configs' training rate: adapt the weights, don't retrain


def check_variants(variants, ela_in_graph: bool = False) -> None:
    """Refuse, before any work, a variant that does not exist or that cannot carry an in-graph ELA."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)} — choose from {','.join(VARIANTS)}")
    unsupported = sorted(set(variants) - set(ELA_IN_GRAPH_VARIANTS)) if ela_in_graph else []
    if unsupported:
        raise ValueError(f"--ela_in_graph exports {' and '.join(ELA_IN_GRAPH_VARIANTS)} only, not {', '.join(unsupported)}")
