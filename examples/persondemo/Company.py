class Company:

    def __init__(self):
        self._employer = "InterSystems"

    def displayEmployer(self):
        return "employer: " + self._employer
