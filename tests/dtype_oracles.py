"""The NumPy / ml_dtypes type that implements each preset format (tf32 has none): shared by the tests."""

import ml_dtypes
import numpy as np

DTYPE_OF = {
    "fp64": np.float64,
    "fp32": np.float32,
    "fp16": np.float16,
    "bf16": ml_dtypes.bfloat16,
    "e4m3": ml_dtypes.float8_e4m3fn,
    "e5m2": ml_dtypes.float8_e5m2,
    "e3m2": ml_dtypes.float6_e3m2fn,
    "e2m3": ml_dtypes.float6_e2m3fn,
    "e2m1": ml_dtypes.float4_e2m1fn,
}
# The formats narrower than float32, whose cast from float32 rounds to nearest even.
CAST_TYPES = {name: t for name, t in DTYPE_OF.items() if name not in ("fp64", "fp32")}
