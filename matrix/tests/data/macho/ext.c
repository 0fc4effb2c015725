/* A stand-in extension module: one Python symbol, resolved when the module is loaded. */
extern void *PyLong_FromLong(long);
void *PyInit_fixture(void) { return PyLong_FromLong(1); }
