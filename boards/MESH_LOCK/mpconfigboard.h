// MESH_LOCK: ESP32_GENERIC hardware; only the names differ (shown by `os.uname()` and the REPL banner).
#define MICROPY_HW_BOARD_NAME "Mesh lock"
#define MICROPY_HW_MCU_NAME "ESP32"
