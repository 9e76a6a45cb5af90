# The MESH_LOCK firmware's C modules (USER_C_MODULES for the ESP32 port; `make firmware` passes this file).
include(${CMAKE_CURRENT_LIST_DIR}/mesh_p256/micropython.cmake)
