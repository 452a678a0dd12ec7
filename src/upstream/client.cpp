#include "upstream/client.hpp"
