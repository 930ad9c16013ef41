# LibTorch for every build: the `torch` wheel pinned in scripts/torch-requirements.txt, installed by
# scripts/install-deps.sh into .deps/venv (or any PyTorch: -DWAN_TORCH_PYTHON=/path/to/python, or
# -DTorch_DIR=...). The wheel's LibTorch is built with CUDA; it also runs CPU tensors where no GPU exists.
#
# Two variants of the same LibTorch:
#   CUDA (the default where the CUDA toolkit is found): TorchConfig.cmake with CUDA, the engine's CUDA code
#        (NCCL communicator, CUDA allocator statistics, CUDA generator, SDPA back-ends) compiled as C++
#        against LibTorch's CUDA API. The CUDA language is enabled for Ampere, Ada and Hopper (sm_80, 86,
#        89, 90) plus PTX of compute_90 for later GPUs: the architectures of any .cu file (there are none
#        yet) and, as TORCH_CUDA_ARCH_LIST, of Torch's own CUDA flags.
#   CPU-only (no nvcc, or -DWAN_CUDA=OFF): TorchConfig.cmake cannot be read without a CUDA toolkit (it
#        fails in its public/cuda.cmake), so the targets are made here from the wheel's headers and its
#        libtorch_cpu / libc10; the CUDA libraries are not linked and the CUDA code is not compiled.
#
# Sets: WAN_WITH_CUDA (ON/OFF), WAN_TORCH_LIBRARIES, WAN_TORCH_LIB_DIR, Torch_VERSION.
set(WAN_TORCH_MIN_VERSION 2.11)  # the pinned minimum: the code has no branch for older LibTorch
set(WAN_CUDA AUTO CACHE STRING "Build the CUDA variant: AUTO (where nvcc is found), ON, OFF")
set_property(CACHE WAN_CUDA PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${WAN_CUDA}" _wan_cuda)
if(NOT _wan_cuda STREQUAL "AUTO")
  if(WAN_CUDA)  # any CMake spelling of true or false
    set(_wan_cuda ON)
  else()
    set(_wan_cuda OFF)
  endif()
endif()

# 1. Where the torch package is: -DWAN_TORCH_PYTHON, else the project's virtual environment, else a python3
# on PATH. Looked up again at every configure (an earlier failed one may have cached a python without torch).
set(WAN_TORCH_PYTHON "" CACHE FILEPATH "Python whose torch package provides LibTorch (empty: .deps/venv, then python3)")
set(_wan_python "${WAN_TORCH_PYTHON}")
if(NOT _wan_python)
  if(EXISTS "${PROJECT_SOURCE_DIR}/.deps/venv/bin/python")
    set(_wan_python "${PROJECT_SOURCE_DIR}/.deps/venv/bin/python")
  else()
    find_program(_wan_python_found NAMES python3 python NO_CACHE)
    set(_wan_python "${_wan_python_found}")
  endif()
endif()
# importlib finds the package without importing torch (which takes seconds and may print warnings).
execute_process(
  COMMAND "${_wan_python}" -c "import importlib.util as u; s = u.find_spec('torch'); print(s.submodule_search_locations[0] if s else '')"
  OUTPUT_VARIABLE WAN_TORCH_PACKAGE_DIR OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT WAN_TORCH_PACKAGE_DIR OR NOT EXISTS "${WAN_TORCH_PACKAGE_DIR}/share/cmake/Torch/TorchConfig.cmake")
  message(FATAL_ERROR "LibTorch not found: no torch package for '${_wan_python}'. "
    "Run scripts/install-deps.sh (it installs the pinned torch wheel into .deps/venv), "
    "or pass -DWAN_TORCH_PYTHON=/path/to/python with torch installed.")
endif()
set(WAN_TORCH_LIB_DIR "${WAN_TORCH_PACKAGE_DIR}/lib")
file(STRINGS "${WAN_TORCH_PACKAGE_DIR}/version.py" _wan_tv REGEX "^__version__")
string(REGEX REPLACE "^__version__ *= *'([0-9]+\\.[0-9]+\\.[0-9]+).*" "\\1" Torch_VERSION "${_wan_tv}")
if(Torch_VERSION VERSION_LESS WAN_TORCH_MIN_VERSION)
  message(FATAL_ERROR "LibTorch ${Torch_VERSION} in ${WAN_TORCH_PACKAGE_DIR} is older than ${WAN_TORCH_MIN_VERSION}, "
    "the minimum this project supports. Run scripts/install-deps.sh for the pinned version.")
endif()

# 2. CUDA toolkit: nvcc on PATH, or in /usr/local/cuda.
set(WAN_WITH_CUDA OFF)
if(NOT _wan_cuda STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(_wan_nvcc nvcc HINTS ENV CUDA_HOME ENV CUDA_PATH PATH_SUFFIXES bin PATHS /usr/local/cuda/bin)
    if(_wan_nvcc)
      set(CMAKE_CUDA_COMPILER "${_wan_nvcc}" CACHE FILEPATH "CUDA compiler")
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(WAN_WITH_CUDA ON)
  elseif(_wan_cuda STREQUAL "ON")
    message(FATAL_ERROR "WAN_CUDA=ON but no CUDA toolkit (nvcc) was found: install it (or set CUDA_HOME) or use -DWAN_CUDA=OFF")
  endif()
endif()

if(WAN_WITH_CUDA)
  # Ampere (A100: 80; RTX 30xx, A6000: 86), Ada (RTX 40xx, L40: 89), Hopper (H100/H200: 90); "90" is
  # sm_90 machine code plus compute_90 PTX, which later GPUs compile at load.
  if(NOT CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES "80-real;86-real;89-real;90" CACHE STRING "CUDA architectures")
  endif()
  if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST} AND NOT TORCH_CUDA_ARCH_LIST)
    set(TORCH_CUDA_ARCH_LIST "8.0;8.6;8.9;9.0+PTX")  # the same list in Torch's spelling (its CUDA flags)
  endif()
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  # The package folder first, so that TorchConfig's find_library() calls take its lib/ and not another
  # LibTorch installed on the system (Debian's libtorch-dev, say).
  list(PREPEND CMAKE_PREFIX_PATH "${WAN_TORCH_PACKAGE_DIR}" "${WAN_TORCH_PACKAGE_DIR}/share/cmake")
  set(_wan_cuda_archs "${CMAKE_CUDA_ARCHITECTURES}")
  # Torch's public/cuda.cmake warns about CMAKE_CUDA_ARCHITECTURES and sets it OFF (it uses
  # TORCH_CUDA_ARCH_LIST); hidden from it, then set again for the engine's own .cu files.
  unset(CMAKE_CUDA_ARCHITECTURES)
  unset(CMAKE_CUDA_ARCHITECTURES CACHE)
  find_package(Torch REQUIRED CONFIG)
  set(CMAKE_CUDA_ARCHITECTURES "${_wan_cuda_archs}" CACHE STRING "CUDA architectures" FORCE)
  string(FIND "${TORCH_LIBRARY}" "${WAN_TORCH_LIB_DIR}/" _wan_at)
  if(NOT _wan_at EQUAL 0)
    message(FATAL_ERROR "TorchConfig found ${TORCH_LIBRARY}, not the LibTorch of ${WAN_TORCH_PACKAGE_DIR}: "
      "remove the stale build folder, or the other LibTorch from CMAKE_PREFIX_PATH")
  endif()
  set(WAN_TORCH_LIBRARIES ${TORCH_LIBRARIES})
  message(STATUS "LibTorch ${Torch_VERSION} with CUDA ${CMAKE_CUDA_COMPILER_VERSION} (${WAN_TORCH_PACKAGE_DIR}); "
                 "CUDA architectures ${CMAKE_CUDA_ARCHITECTURES}")
else()
  if(_wan_cuda STREQUAL "OFF")
    message(STATUS "WAN_CUDA=OFF: building the CPU-only variant against LibTorch ${Torch_VERSION} (no GPU, no NCCL)")
  else()
    message(STATUS "No CUDA toolkit (nvcc): building the CPU-only variant against LibTorch ${Torch_VERSION} "
                   "(no GPU, no NCCL; install the CUDA toolkit and reconfigure for the CUDA build)")
  endif()
  find_package(Threads REQUIRED)
  add_library(wan_torch_cpu INTERFACE)
  target_include_directories(wan_torch_cpu SYSTEM INTERFACE
    "${WAN_TORCH_PACKAGE_DIR}/include" "${WAN_TORCH_PACKAGE_DIR}/include/torch/csrc/api/include")
  target_link_libraries(wan_torch_cpu INTERFACE
    "${WAN_TORCH_LIB_DIR}/libtorch_cpu.so" "${WAN_TORCH_LIB_DIR}/libc10.so" Threads::Threads)
  # What TorchConfig.cmake would add: the ABI of the wheel and the c10d / gloo switches of its build.
  target_compile_definitions(wan_torch_cpu INTERFACE _GLIBCXX_USE_CXX11_ABI=1 USE_DISTRIBUTED USE_C10D_GLOO)
  set(WAN_TORCH_LIBRARIES wan_torch_cpu)
endif()

# The wheel's libtorch.so exports parts of a newer libstdc++ that its build linked statically
# (std::filesystem, std::chrono's time zones, string streams): listed before libstdc++.so.6, it
# interposes them, and std::filesystem::remove_all from the engine jumped to address 0 (seen here).
# libstdc++.so.6 first in every program's DT_NEEDED makes the system's definitions win.
add_link_options("LINKER:--push-state,--no-as-needed,-lstdc++,--pop-state")

# Executables find LibTorch (and, through its own RPATH, the CUDA libraries of the wheel) at run time,
# through this one RUNPATH entry, in the build folder and installed alike. (CMake's automatic build RPATH
# would list every link folder TorchConfig names, the CUDA toolkit's and an empty entry among them.)
set(CMAKE_BUILD_WITH_INSTALL_RPATH ON)
list(APPEND CMAKE_INSTALL_RPATH "${WAN_TORCH_LIB_DIR}")
