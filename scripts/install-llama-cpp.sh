#!/usr/bin/env bash
# Install llama-cpp-python built for portable x86-64 (AVX2, FMA, F16C), never for the
# build machine's own CPU (llama.cpp's default, GGML_NATIVE): a native build on a CPU that
# reports AMX uses AMX tile instructions, which this kind of VM refuses (SIGILL in the
# first matrix product). pip's wheel cache cannot tell the two builds apart, so the wheel
# is built here, once per version and flags, into a cache of its own (~7 min on 2 cores).
set -euo pipefail
python=$1
version=${LLAMA_CPP_VERSION:-0.3.36}
flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
key=$(printf '%s %s' "$version" "$flags" | sha256sum | cut -c1-16)
wheels=${RAGLINE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ragline/wheels}/llama-cpp-$key
marker=$("$python" -c 'import sys; print(sys.prefix)')/.llama-cpp-$key
if [ -e "$marker" ]; then
    exit 0
fi
if ! ls "$wheels"/llama_cpp_python-"$version"-*.whl > /dev/null 2>&1; then
    echo "building llama-cpp-python $version (portable: $flags), once"
    mkdir -p "$wheels.tmp"
    CMAKE_ARGS="$flags" "$python" -m pip wheel -q --no-cache-dir --no-deps \
        "llama-cpp-python==$version" -w "$wheels.tmp"
    rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
fi
"$python" -m pip install -q --force-reinstall --no-deps "$wheels"/llama_cpp_python-"$version"-*.whl
touch "$marker"
