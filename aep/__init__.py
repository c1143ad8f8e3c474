"""The Adobe Experience Platform client: IMS auth, one HTTP layer, one module per API."""
