// thinwire command-line tool (commands are added as their layers land).
#include <cstdio>

int main() {
  std::puts("thinwire: no commands yet");
  return 0;
}
