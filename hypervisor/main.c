/* cc-runtime: host commands (placeholder). */
#include <stdio.h>
int main(void)
{
        return 0;
}
