#include "routing/router.hpp"
