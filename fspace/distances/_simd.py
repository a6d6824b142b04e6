"""SIMD vectors for numba kernels: a value type held in vector registers, and its operations.

numba's loop vectoriser keeps to 256-bit vectors on AVX-512 machines and keeps
accumulators in memory when a loop carries many of them; a micro-kernel written with
these explicit vectors of the machine's full width holds its accumulators in registers,
as a BLAS micro-kernel does. Imported only by the compiled kernels.
"""

from __future__ import annotations

import functools

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model


@functools.cache
def vector_bits() -> int:
    """Width of the widest vector registers numba compiles for (512, 256 or 128)."""
    import llvmlite.binding as llvm
    import numba

    if numba.config.CPU_FEATURES is not None:  # a portable target chosen by the user
        features = set(numba.config.CPU_FEATURES.replace(" ", "").split(","))
        enabled = {f[1:] for f in features if f.startswith("+")}
    elif numba.config.CPU_NAME is not None:
        enabled = set()
    else:
        enabled = {name for name, on in llvm.get_host_cpu_features().items() if on}
    if "avx512f" in enabled:
        return 512
    return 256 if "avx" in enabled else 128


def lanes(itemsize: int) -> int:
    """Floats of ``itemsize`` bytes in one vector register."""
    return vector_bits() // (8 * itemsize)


class Vector(types.Type):
    """A vector of ``lanes`` floats of type ``dtype``, a value kept in a register."""

    def __init__(self, dtype: types.Float, count: int) -> None:
        self.dtype, self.count = dtype, count
        super().__init__(name=f"Vector({dtype}, {count})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        scalar = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(scalar, fe_type.count))


def _vector_of(dtype: types.Float) -> Vector:
    return Vector(dtype, vector_bits() // dtype.bitwidth)


def _pointer(context, builder, array_type, array, index, vector_type):
    data = context.make_array(array_type)(context, builder, array).data
    address = builder.gep(data, [index])
    return builder.bitcast(address, context.get_value_type(vector_type).as_pointer())


@intrinsic
def vload(typingctx, array, index):
    """The vector ``array[index : index + lanes]`` of a contiguous 1-d float array."""
    vector = _vector_of(array.dtype)

    def codegen(context, builder, sig, args):
        address = _pointer(context, builder, sig.args[0], args[0], args[1], vector)
        return builder.load(address, align=array.dtype.bitwidth // 8)

    return vector(array, index), codegen


@intrinsic
def vstore(typingctx, array, index, value):
    """Store the vector ``value`` at ``array[index : index + lanes]``."""

    def codegen(context, builder, sig, args):
        address = _pointer(context, builder, sig.args[0], args[0], args[1], sig.args[2])
        builder.store(args[2], address, align=array.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(array, index, value), codegen


def _splat(builder, vtype, value):
    undefined = ir.Constant(vtype, ir.Undefined)
    first = builder.insert_element(undefined, value, ir.Constant(ir.IntType(32), 0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), vtype.count), [0] * vtype.count)
    return builder.shuffle_vector(first, undefined, zeros)


@intrinsic
def vsplat(typingctx, x):
    """The vector with every lane equal to the float ``x``."""
    vector = _vector_of(x)

    def codegen(context, builder, sig, args):
        return _splat(builder, context.get_value_type(vector), args[0])

    return vector(x), codegen


@intrinsic
def vbroadcast(typingctx, array, index):
    """The vector with every lane equal to ``array[index]`` (a 1-d float array, index >= 0).

    Unlike ``vsplat(array[index])`` it skips numba's negative-index handling, four
    integer instructions per load in a loop that is otherwise all multiply-adds.
    """
    vector = _vector_of(array.dtype)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        value = builder.load(builder.gep(data, [args[1]]))
        return _splat(builder, context.get_value_type(vector), value)

    return vector(array, index), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c`` lane by lane, one fused multiply-add."""

    def codegen(context, builder, sig, args):
        vtype = args[0].type
        bits = 32 if isinstance(vtype.element, ir.FloatType) else 64
        fnty = ir.FunctionType(vtype, [vtype, vtype, vtype])
        fma = cgutils.get_or_insert_function(
            builder.module, fnty, f"llvm.fma.v{vtype.count}f{bits}"
        )
        return builder.call(fma, args)

    return c(a, b, c), codegen


@intrinsic
def vmulmax(typingctx, p, s, floor):
    """``p * max(s, floor)`` lane by lane."""

    def codegen(context, builder, sig, args):
        p, s, floor = args
        larger = builder.select(builder.fcmp_ordered(">", s, floor), s, floor)
        return builder.fmul(p, larger)

    return p(p, s, floor), codegen


@intrinsic
def vrescale(typingctx, p, counts, index, small, scale):
    """``p * scale`` where ``p < small``, else ``p``; counts those lanes.

    ``counts[index : index + lanes]`` (same float type as ``p``) gets 1 added in each
    rescaled lane.
    """

    def codegen(context, builder, sig, args):
        p, counts, index, small, scale = args
        below = builder.fcmp_ordered("<", p, small)
        vtype = p.type
        one = ir.Constant(vtype, [1.0] * vtype.count)
        zero = ir.Constant(vtype, [0.0] * vtype.count)
        address = _pointer(context, builder, sig.args[1], counts, index, sig.args[0])
        align = sig.args[1].dtype.bitwidth // 8
        total = builder.fadd(builder.load(address, align=align), builder.select(below, one, zero))
        builder.store(total, address, align=align)
        return builder.select(below, builder.fmul(p, scale), p)

    return p(p, counts, index, small, scale), codegen


@intrinsic
def vmul(typingctx, a, b):
    """``a * b`` lane by lane."""

    def codegen(context, builder, sig, args):
        return builder.fmul(*args)

    return a(a, b), codegen
