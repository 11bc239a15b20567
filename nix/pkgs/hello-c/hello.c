#include <stdio.h>
#include <string.h>

/* GNU hello's greeting, compiled: the C counterpart of pkgs.hello. */
int main(int argc, char **argv) {
  const char *greeting = "Hello, world!";
  for (int i = 1; i < argc; i++) {
    if ((strcmp(argv[i], "-g") == 0 || strcmp(argv[i], "--greeting") == 0) && i + 1 < argc) greeting = argv[++i];
    else if (strcmp(argv[i], "--version") == 0) { puts("hello-c (tsnix) " VERSION); return 0; }
    else { fprintf(stderr, "hello: unrecognized option '%s'\n", argv[i]); return 1; }
  }
  puts(greeting);
  return 0;
}
