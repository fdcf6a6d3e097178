// The translation unit that builds cada's shared precompiled header (CMakeLists.txt, CADA_PCH):
// libtorch's headers, parsed once for every target from the model layer up.
