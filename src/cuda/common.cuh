/*
 * common.cuh — what every CUDA source of the GPU backend shares: checked calls that report
 * the file and line, the activation element types, and launch helpers.
 */
#ifndef RN_CUDA_COMMON_CUH
#define RN_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdint.h>

extern "C" {
#include "core/internal.h"
}

/* Each check returns RN_ERR_DEVICE from the enclosing function with "file:line: call: error". */
#define CU_TRY(call)                                                                           \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess)                                                                 \
            return rn_fail(RN_ERR_DEVICE, "%s:%d: %s: %s", __FILE__, __LINE__, #call,          \
                           cudaGetErrorString(e_));                                            \
    } while (0)
#define CUDNN_TRY(call)                                                                        \
    do {                                                                                       \
        cudnnStatus_t e_ = (call);                                                             \
        if (e_ != CUDNN_STATUS_SUCCESS)                                                        \
            return rn_fail(RN_ERR_DEVICE, "%s:%d: %s: %s", __FILE__, __LINE__, #call,          \
                           cudnnGetErrorString(e_));                                           \
    } while (0)
#define CUBLAS_TRY(call)                                                                       \
    do {                                                                                       \
        cublasStatus_t e_ = (call);                                                            \
        if (e_ != CUBLAS_STATUS_SUCCESS)                                                       \
            return rn_fail(RN_ERR_DEVICE, "%s:%d: %s: cuBLAS status %d", __FILE__, __LINE__,   \
                           #call, (int)e_);                                                    \
    } while (0)
/* A kernel launch: checks the launch itself (bad configuration), not its execution. */
#define LAUNCH_TRY() CU_TRY(cudaGetLastError())
/* Propagates an rn_status. */
#define RN_TRY(call)                                                                           \
    do {                                                                                       \
        rn_status s_ = (call);                                                                 \
        if (s_ != RN_OK) return s_;                                                            \
    } while (0)

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(bf16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float x) { return __float2bfloat16(x); }

/* Blocks for a grid-stride loop over n elements. */
static inline int grid_for(size_t n, int threads) {
    size_t b = (n + threads - 1) / threads;
    return (int)(b < 1 ? 1 : b > 65535 * 8 ? 65535 * 8 : b);
}

#endif
