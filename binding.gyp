{
  "targets": [
    {
      "target_name": "jukebox_avx512",
      "type": "static_library",
      "sources": [],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter", "-ffp-contract=off"],
      "conditions": [
        ["target_arch=='x64'", {
          "sources": [
            "csrc/cpu/gemm_ukernel_avx512.cc",
            "csrc/cpu/gemv_avx512.cc",
            "csrc/cpu/gemv_i8_avx512.cc",
            "csrc/cpu/vec_avx512.cc",
            "csrc/cpu/vq_avx512.cc",
            "csrc/cpu/fma_peak_avx512.cc"
          ],
          # -Wno-maybe-uninitialized: GCC 12's own AVX-512 intrinsics trip it (_mm512_undefined_ps,
          # GCC bug 105593, fixed in GCC 13); the kernels are compiled with every other warning.
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-Wno-maybe-uninitialized"],
          "xcode_settings": {
            "OTHER_CPLUSPLUSFLAGS": ["-O3", "-ffp-contract=off", "-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl"]
          }
        }]
      ],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17"
      }
    },
    {
      "target_name": "jukebox",
      "dependencies": ["jukebox_avx512"],
      "sources": [
        "csrc/core/thread_pool.cc",
        "csrc/core/mapped_file.cc",
        "csrc/cpu/cpu_features.cc",
        "csrc/cpu/gemm_ukernel_generic.cc",
        "csrc/cpu/gemm_ukernel_avx2.cc",
        "csrc/cpu/dispatch_avx512.cc",
        "csrc/cpu/conv1d.cc",
        "csrc/cpu/conv1d_ref.cc",
        "csrc/cpu/vq.cc",
        "csrc/cpu/vq_avx2.cc",
        "csrc/cpu/fma_peak.cc",
        "csrc/cpu/mem_bandwidth.cc",
        "csrc/cpu/matmul.cc",
        "csrc/cpu/gemv_avx2.cc",
        "csrc/cpu/attention.cc",
        "csrc/cpu/vec.cc",
        "csrc/cpu/vec_avx2.cc",
        "csrc/model/vqvae.cc",
        "csrc/model/transformer.cc",
        "csrc/model/prior.cc",
        "csrc/model/conditioning.cc",
        "csrc/model/kv_cache.cc",
        "csrc/model/decode_session.cc",
        "csrc/model/prior_model.cc",
        "csrc/model/cpu_prior_runner.cc",
        "csrc/backend/cuda_device.cc",
        "csrc/backend/cuda_prior_runner.cc",
        "csrc/backend/cuda_vqvae_runner.cc",
        "csrc/napi/cuda_stack.cc",
        "csrc/cpu/sampling.cc",
        "csrc/napi/async_job.cc",
        "csrc/napi/weights.cc",
        "csrc/napi/kernels_binding.cc",
        "csrc/napi/vqvae_binding.cc",
        "csrc/napi/weight_store.cc",
        "csrc/napi/prior_binding.cc",
        "csrc/backend/cuda_loader.cc",
        "csrc/napi/backend_binding.cc",
        "csrc/napi/addon.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "cuda/include"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter", "-ffp-contract=off"],
      "ldflags": ["-pthread"],
      "conditions": [
        ["OS=='linux'", { "libraries": ["-ldl"] }]
      ],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-O3"]
      }
    }
  ]
}
