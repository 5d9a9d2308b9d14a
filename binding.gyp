{
  "targets": [
    {
      "target_name": "duocell_sockets",
      "sources": ["native/sockets.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
