# The ESP32 port (CMake): boards/MESH_LOCK/cmodules/micropython.cmake includes this file. mbedTLS comes from
# ESP-IDF (component mbedtls), which the port already links for TLS.
add_library(usermod_mesh_p256 INTERFACE)
target_sources(usermod_mesh_p256 INTERFACE ${CMAKE_CURRENT_LIST_DIR}/mesh_p256.c)
target_include_directories(usermod_mesh_p256 INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(usermod INTERFACE usermod_mesh_p256)
