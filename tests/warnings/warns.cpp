// SPDX-License-Identifier: Apache-2.0
// One warning (-Wunused-variable), nothing else.
int main() {
  int unused = 0;
  return 0;
}
