# Frozen into the MESH_LOCK image (MicroPython manifest API: tools/manifestfile.py of the pinned tree).
# $(BOARD_DIR) is this folder, so the project root is two levels up. tools/host/ (the unix-port stand-ins for
# bluetooth, esp32 and machine) is never named here: on the board those modules are MicroPython's own.

# Everything ESP32_GENERIC freezes: asyncio, the networking bundle, neopixel, upysh, ...
include("$(PORT_DIR)/boards/manifest.py")

# The portable library, imported as `mesh` (lib/mesh/**.py).
package("mesh", base_path="$(BOARD_DIR)/../../lib")

# The application: every module of firmware/. A frozen main.py runs at boot (pyexec_file_if_exists looks in
# the frozen modules before the filesystem), so a flashed lock runs without `make deploy`.
freeze("$(BOARD_DIR)/../../firmware")

# The build flag the firmware reads: this image has the ADV_NONCONN_IND patch (mesh_board.py).
module("mesh_board.py", base_path="$(BOARD_DIR)")
