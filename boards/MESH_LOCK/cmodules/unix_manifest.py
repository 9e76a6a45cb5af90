# Frozen modules of the unix port that `make check-cmodule` builds: what the suite needs and the ESP32 image has.
include("$(MPY_DIR)/extmod/asyncio")
