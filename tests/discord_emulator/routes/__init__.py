"""The emulator's REST routes, one module per Discord resource."""

from .channels import ChannelRoutes
from .gateway import GatewayRoutes
from .guilds import GuildRoutes
from .interactions import InteractionRoutes
from .users import UserRoutes

__all__ = ["ChannelRoutes", "GatewayRoutes", "GuildRoutes", "InteractionRoutes", "UserRoutes"]
