"""Taxi zone geometry: the shapes (shapes.py), coordinates -> LocationID (locate.py),
maps of figures by zone (choropleth.py)."""
