{
  "targets": [
    {
      "target_name": "ringio",
      "sources": [
        "addon/addon.cc",
        "addon/loop.cc",
        "addon/decode.cc",
        "addon/registry.cc",
        "addon/sys.cc",
        "addon/uring_backend.cc",
        "addon/epoll_backend.cc",
        "addon/file_pool.cc",
        "addon/ops.cc",
        "addon/read_many.cc",
        "addon/threads.cc",
        "addon/tls.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=9",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "RINGIO_SOURCE_HASH=<!(node scripts/source-hash.mjs)"
      ],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++1y", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "libraries": ["-l:liburing.a"],
      "ldflags": ["-Wl,--exclude-libs,ALL"]
    }
  ]
}
