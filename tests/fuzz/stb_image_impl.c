// The stb_image decoder compiled into the fuzz tree, so that ASan/UBSan see inside it (the
// normal build links Debian's prebuilt libstb, which has the same code uninstrumented).
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#include <stb_image.h>
