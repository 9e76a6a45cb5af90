# MESH_LOCK: the door-lock board. ESP32_GENERIC (ESP32-WROOM/WROVER module, 4 MiB flash, NimBLE) plus:
#  - sdkconfig.board: BLE settings for a mesh provisionee, NVS/flash-encryption notes;
#  - manifest.py: lib/ (package `mesh`), firmware/ and the `mesh_board` flag module frozen into the image.
# Build from the project root with `make firmware MICROPY_DIR=... IDF_PATH=...` (docs/deploy.md), which also
# applies boards/patches/ to the MicroPython tree first. Paths in SDKCONFIG_DEFAULTS are relative to
# ports/esp32, as in MicroPython's own boards; this board's files are found through MICROPY_BOARD_DIR.
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.ble
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
