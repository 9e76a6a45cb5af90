# Bluetooth Mesh provisionee: portable, sans-I/O protocol and crypto code.
# Runs unchanged on ESP32 MicroPython, the MicroPython unix port and CPython 3.11.
