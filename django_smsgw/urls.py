app_name = "smsgw"

# The delivery callback view is added here by the callbacks work (SPEC §5).
urlpatterns: list = []
