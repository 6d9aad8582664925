#include "test.h"
int main(void)
{
        CHECK(1);
        return test_summary();
}
