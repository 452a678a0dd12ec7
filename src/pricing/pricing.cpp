#include "pricing/pricing.hpp"
