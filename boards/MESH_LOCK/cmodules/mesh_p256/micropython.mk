# make-based ports (the unix port in `make check-cmodule`): USER_C_MODULES=boards/MESH_LOCK/cmodules
MESH_P256_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(MESH_P256_DIR)/mesh_p256.c
